"""Token lookup order of SPEC §4 and the ~/.azureml/settings.json reader; tokens never in messages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from amlvc.credentials import read_azureml_settings, resolve_token
from amlvc.errors import ConfigError, ExitCode, UsageError

WS = "0123456789abcdef0123456789abcdef"


def write_settings(home: Path, **workspace: str) -> Path:
    path = home / ".azureml" / "settings.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"workspace": workspace}))
    return path


def test_token_env_option_wins_over_everything(tmp_path: Path) -> None:
    write_settings(tmp_path, id=WS, authorization_token="from-file")
    env = {"MINE": "from-option", "DEV_TOKEN": "from-remote", "AMLVC_TOKEN": "from-default"}
    creds = resolve_token("dev", workspace_id=WS, token_env="MINE", remote_token_env="DEV_TOKEN", environ=env,
                          home=tmp_path)
    assert (creds.token, creds.source) == ("from-option", "$MINE")


def test_remote_token_env_then_amlvc_token_then_settings(tmp_path: Path) -> None:
    write_settings(tmp_path, id=WS, authorization_token="from-file")
    env = {"DEV_TOKEN": "from-remote", "AMLVC_TOKEN": "from-default"}
    assert resolve_token("dev", workspace_id=WS, remote_token_env="DEV_TOKEN", environ=env,
                         home=tmp_path).source == "$DEV_TOKEN"
    del env["DEV_TOKEN"]
    assert resolve_token("dev", workspace_id=WS, remote_token_env="DEV_TOKEN", environ=env,
                         home=tmp_path).token == "from-default"
    del env["AMLVC_TOKEN"]
    creds = resolve_token("dev", workspace_id=WS, remote_token_env="DEV_TOKEN", environ=env, home=tmp_path)
    assert (creds.token, creds.source) == ("from-file", "~/.azureml/settings.json")


def test_settings_file_of_another_workspace_is_not_used(tmp_path: Path) -> None:
    write_settings(tmp_path, id="f" * 32, authorization_token="other-workspace-token")
    with pytest.raises(ConfigError) as info:
        resolve_token("prod", workspace_id=WS, environ={}, home=tmp_path)
    assert info.value.exit_code == ExitCode.LOCAL
    assert "'prod'" in info.value.message and "AMLVC_TOKEN" in info.value.message
    assert "other-workspace-token" not in info.value.message


def test_token_env_option_naming_an_unset_variable_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(UsageError) as info:
        resolve_token("dev", workspace_id=WS, token_env="NOPE", environ={"AMLVC_TOKEN": "x"}, home=tmp_path)
    assert "NOPE" in info.value.message and "is set" in info.value.message


def test_settings_reader_reads_the_sdk_fields(tmp_path: Path) -> None:
    write_settings(tmp_path, id=WS, authorization_token="tok-123", api_endpoint="https://studio.azureml.net",
                   management_endpoint="https://management.azureml.net")
    settings = read_azureml_settings(tmp_path)
    assert settings is not None
    assert (settings.workspace_id, settings.api_endpoint, settings.management_endpoint) == (
        WS, "https://studio.azureml.net", "https://management.azureml.net")
    assert settings.token == "tok-123" and "tok-123" not in repr(settings)


def test_settings_reader_reports_a_broken_file_by_path(tmp_path: Path) -> None:
    path = tmp_path / ".azureml" / "settings.json"
    path.parent.mkdir()
    path.write_text("{not json")
    with pytest.raises(ConfigError) as info:
        read_azureml_settings(tmp_path)
    assert str(path) in info.value.message
    assert read_azureml_settings(tmp_path / "nowhere") is None


def test_credentials_repr_hides_the_token() -> None:
    creds = resolve_token("dev", workspace_id=WS, environ={"AMLVC_TOKEN": "s3cr3t-token"}, home=Path("/nonexistent"))
    assert "s3cr3t-token" not in repr(creds)


def test_the_sdk_settings_file_authenticates_a_push_end_to_end(tmp_path: Path, run_cli: Any,
                                                               isolated_env: Path) -> None:
    from pushkit import DEV, TOKENS, make_repo, start

    with start(tmp_path) as server:
        root = make_repo(tmp_path, server)
        missing = run_cli(["push", "--dry-run"], cwd=root)
        assert missing.exit_code == 3
        assert "no token for workspace 'dev'" in missing.stderr and "$AMLVC_TOKEN_DEV" in missing.stderr
        write_settings(isolated_env, id=DEV, authorization_token=TOKENS["dev"], api_endpoint=server.url)
        assert run_cli(["pull"], cwd=root).exit_code == 0
        result = run_cli(["push", "--dry-run"], cwd=root)
        assert result.exit_code == 0, result.stderr
        assert TOKENS["dev"] not in result.stderr + result.stdout
