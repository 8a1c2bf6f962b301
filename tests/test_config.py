"""amlvc.toml: parsing, validation messages naming the file and key, remote selection, writing."""

from __future__ import annotations

from pathlib import Path

import pytest

from amlvc import config
from amlvc.config import Config, Remote
from amlvc.errors import ConfigError, ExitCode, UsageError

WS = "0123456789abcdef0123456789abcdef"


def test_round_trip_keeps_order_and_other_tables(tmp_path: Path) -> None:
    text = (
        "[amlvc]\nformat = 1\ndefault_remote = \"prod\"\nfuture = true\n\n"
        f"[remotes.dev]\nworkspace_id = \"{WS}\"\nendpoint = \"http://127.0.0.1:8765\"\ntoken_env = \"DEV_TOKEN\"\n\n"
        f"[remotes.prod]\nworkspace_id = \"{WS}\"\nlocation = \"West Europe\"\n\n[review]\ncolor = \"auto\"\n"
    )
    cfg = config.parse(text)
    assert cfg.names() == ["dev", "prod"]
    assert cfg.remote() == Remote("prod", WS, location="West Europe")
    assert cfg.remote("dev").token_env == "DEV_TOKEN"
    (tmp_path / "amlvc.toml").write_bytes(config.dumps(cfg))
    again = config.load(tmp_path)
    assert again == cfg
    assert b"[review]" in config.dumps(again)


def test_offline_config_has_no_remotes() -> None:
    cfg = config.parse(config.dumps(Config()).decode())
    assert cfg.remotes == ()
    with pytest.raises(ConfigError, match="no remote configured"):
        cfg.remote()


def test_remote_selection() -> None:
    one = Config().with_remote(Remote("dev", WS, endpoint="http://h"))
    assert one.remote().name == "dev"
    two = one.with_remote(Remote("prod", WS, location="West Europe"))
    with pytest.raises(UsageError, match="--remote"):
        two.remote()
    with pytest.raises(UsageError, match="no remote named 'qa'"):
        two.remote("qa")
    replaced = two.with_remote(Remote("dev", WS, endpoint="http://other"))
    assert replaced.names() == ["dev", "prod"] and replaced.remote("dev").endpoint == "http://other"


@pytest.mark.parametrize(("body", "message"), [
    ("[amlvc\n", "invalid TOML"),
    ("[amlvc]\nformat = 2\n", "amlvc.format"),
    ("[remotes.dev]\nendpoint = \"http://h\"\n", "remotes.dev.workspace_id: missing"),
    ("[remotes.dev]\nworkspace_id = \"XYZ\"\nendpoint = \"http://h\"\n", "remotes.dev.workspace_id: expected 32"),
    (f"[remotes.dev]\nworkspace_id = \"{WS}\"\n", "exactly one of endpoint"),
    (f"[remotes.dev]\nworkspace_id = \"{WS}\"\nendpoint = \"ftp://h\"\n", "remotes.dev.endpoint"),
    (f"[remotes.dev]\nworkspace_id = \"{WS}\"\nendpoint = \"http://u:tok@h\"\n", "must not carry credentials"),
    (f"[remotes.dev]\nworkspace_id = \"{WS}\"\nendpoint = \"http://h\"\ntoken_env = \"abc def\"\n", "token_env"),
    (f"[remotes.dev]\nworkspace_id = \"{WS}\"\nendpoint = \"http://h\"\ntoken = \"x\"\n", "remotes.dev.token: unknown"),
    (f"[remotes.import]\nworkspace_id = \"{WS}\"\nendpoint = \"http://h\"\n", "remote name 'import'"),
    (f"[amlvc]\ndefault_remote = \"x\"\n[remotes.dev]\nworkspace_id = \"{WS}\"\nendpoint = \"http://h\"\n",
     "default_remote: no remote named 'x'"),
    ("remotes = 3\n", "remotes: expected tables"),
])
def test_invalid_config_names_file_and_key(tmp_path: Path, body: str, message: str) -> None:
    (tmp_path / "amlvc.toml").write_text(body)
    with pytest.raises(ConfigError, match=r"amlvc\.toml") as info:
        config.load(tmp_path)
    assert message in str(info.value)
    assert info.value.exit_code == ExitCode.LOCAL
    assert "\n" not in str(info.value)


def test_missing_config(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="amlvc init"):
        config.load(tmp_path)


SUB = "5f7a9c1b-3d5e-4f7a-9b1c-3d5e7f9a1b3c"


def test_a_remotes_web_service_settings_round_trip_and_complete_the_plan_id(tmp_path: Path) -> None:
    text = (f"[remotes.prod]\nworkspace_id = \"{WS}\"\nlocation = \"West Europe\"\n\n"
            f"[remotes.prod.webservices]\nsubscription = \"{SUB}\"\nresource_group = \"ml-rg\"\n"
            "commitment_plan = \"plan-s1\"\nstorage_account = \"contosoml\"\nlocation = \"West Europe\"\n")
    cfg = config.parse(text)
    ws = cfg.remote("prod").webservices
    assert ws == config.WebServiceSettings(SUB, "ml-rg", "plan-s1", "contosoml", "West Europe")
    assert ws.plan_id() == (f"/subscriptions/{SUB}/resourceGroups/ml-rg/providers/Microsoft.MachineLearning/"
                            "commitmentPlans/plan-s1")
    (tmp_path / "amlvc.toml").write_bytes(config.dumps(cfg))
    assert config.load(tmp_path) == cfg
    # `amlvc init --remote prod …` again (a new endpoint) keeps the table
    moved = cfg.with_remote(Remote("prod", WS, location="North Europe"))
    assert moved.remote("prod").webservices == ws and moved.remote("prod").location == "North Europe"
    full = "/subscriptions/x/resourceGroups/y/providers/Microsoft.MachineLearning/commitmentPlans/z"
    assert config.WebServiceSettings(commitment_plan=full).plan_id() == full


@pytest.mark.parametrize(("table", "message"), [
    ("subscription = \"not-a-guid\"", "remotes.dev.webservices.subscription: expected an Azure subscription id"),
    ("storage_account = \"Has-Upper\"", "remotes.dev.webservices.storage_account: expected a storage account name"),
    ("storage_key = \"abc\"", "remotes.dev.webservices.storage_key: unknown key"),
    ("resource_group = 3", "remotes.dev.webservices.resource_group: expected a resource group name"),
    ("token_env = \"eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9abcdefghijklmnop\"", "looks like a token"),
])
def test_invalid_web_service_settings_name_the_key(table: str, message: str) -> None:
    text = f"[remotes.dev]\nworkspace_id = \"{WS}\"\nendpoint = \"http://h\"\n\n[remotes.dev.webservices]\n{table}\n"
    with pytest.raises(ConfigError, match=message) as info:
        config.parse(text)
    assert info.value.exit_code == ExitCode.LOCAL
