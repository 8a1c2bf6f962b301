"""amlvc.toml: the repository's settings and remotes (workspaces); read, validated and written; never a secret."""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tomli_w

from amlvc import repo
from amlvc.credentials import ENV_NAME, looks_like_token
from amlvc.errors import ConfigError, UsageError
from amlvc.rules import CONFIG_FILE, IMPORT_REMOTE

FORMAT = 1

REMOTE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
WORKSPACE_ID = re.compile(r"^[0-9a-f]{32}$")
_REMOTE_KEYS = ("workspace_id", "endpoint", "location", "token_env")
WEBSERVICES_TABLE = "webservices"  # [remotes.NAME.webservices]
# The web-service settings of a remote: key -> (pattern, what it must be). Never a key or a token.
_WEBSERVICE_KEYS: dict[str, tuple[re.Pattern[str], str]] = {
    "subscription": (re.compile(r"^[0-9a-fA-F]{8}-([0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}$"),
                     "an Azure subscription id (a GUID)"),
    "resource_group": (re.compile(r"^[-\w._()]{1,90}$"), "a resource group name"),
    "commitment_plan": (re.compile(r"^(/subscriptions/[^/]+/resourceGroups/[^/]+/providers/Microsoft\.MachineLearning/"
                                   r"commitmentPlans/)?[-\w._]{1,260}$", re.IGNORECASE),
                        "a commitment plan name (in this subscription and resource group) or its ARM id"),
    "storage_account": (re.compile(r"^[a-z0-9]{3,24}$"), "a storage account name (3-24 lower-case letters, digits)"),
    "location": (re.compile(r"^[A-Za-z][A-Za-z0-9 ]{0,63}$"), "an Azure region (\"South Central US\")"),
    "token_env": (re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$"),
                  "the name of the environment variable holding the Azure Resource Manager token"),
}


@dataclass(frozen=True)
class WebServiceSettings:
    """`[remotes.NAME.webservices]`: where the remote's new (ARM) web services live and the per-remote parts of
    their definitions (architecture §2.6), so one service.json deploys to dev and prod. The storage account's key
    is a secret (`AMLVC_SECRET_STORAGE_ACCOUNT_KEY` or the secrets file), never here."""

    subscription: str | None = None
    resource_group: str | None = None
    commitment_plan: str | None = None  # a plan name in subscription/resource_group, or its ARM id
    storage_account: str | None = None  # where models and batch inputs are put (default: the workspace's own)
    location: str | None = None  # the region of a service created here (default: the definition's)
    token_env: str | None = None  # ARM token (Azure AD); default: the workspace token (what the local workspace takes)

    def to_toml(self) -> dict[str, str]:
        return {key: value for key, value in self.__dict__.items() if value is not None}

    def plan_id(self) -> str | None:
        """The commitment plan's ARM id (a bare name is completed with the subscription and resource group)."""
        plan = self.commitment_plan
        if plan is None or plan.startswith("/") or not (self.subscription and self.resource_group):
            return plan
        return (f"/subscriptions/{self.subscription}/resourceGroups/{self.resource_group}/providers/"
                f"Microsoft.MachineLearning/commitmentPlans/{plan}")


def parse_webservices(table: Any, where: str) -> WebServiceSettings:
    """`[remotes.NAME.webservices]` checked key by key; ConfigError (3) naming the key otherwise."""
    if not isinstance(table, dict):
        raise ConfigError(f"{where}: expected a table")
    for key, value in table.items():
        known = _WEBSERVICE_KEYS.get(key)
        if known is None:
            raise ConfigError(f"{where}.{key}: unknown key (known: {', '.join(_WEBSERVICE_KEYS)})")
        if not isinstance(value, str) or not known[0].match(value):
            raise ConfigError(f"{where}.{key}: expected {known[1]}, got {value!r}")
    if table.get("token_env") and looks_like_token(table["token_env"]):
        raise ConfigError(f"{where}.token_env: this value looks like a token; give the name of the variable")
    return WebServiceSettings(**table)


@dataclass(frozen=True)
class Remote:
    """One workspace the repository talks to: by `endpoint` URL or by Azure `location` (region name)."""

    name: str
    workspace_id: str
    endpoint: str | None = None
    location: str | None = None
    token_env: str | None = None
    webservices: WebServiceSettings | None = None

    def to_toml(self) -> dict[str, Any]:
        table: dict[str, Any] = {"workspace_id": self.workspace_id}
        for key in ("endpoint", "location", "token_env"):
            value = getattr(self, key)
            if value is not None:
                table[key] = value
        if self.webservices is not None:
            table[WEBSERVICES_TABLE] = self.webservices.to_toml()
        return table


@dataclass(frozen=True)
class Config:
    """The parsed amlvc.toml; `remotes` keeps the file's order."""

    format: int = FORMAT
    default_remote: str | None = None
    remotes: tuple[Remote, ...] = ()
    extra: Mapping[str, Any] = field(default_factory=dict)  # other tables, kept when the file is rewritten

    def names(self) -> list[str]:
        return [r.name for r in self.remotes]

    def get(self, name: str) -> Remote | None:
        return next((r for r in self.remotes if r.name == name), None)

    def remote(self, name: str | None = None) -> Remote:
        """The remote to use: `name`, else `default_remote`, else the only one; UsageError/ConfigError otherwise."""
        if name is not None:
            found = self.get(name)
            if found is None:
                known = ", ".join(self.names()) or "none"
                raise UsageError(f"no remote named {name!r} in {CONFIG_FILE} (remotes: {known}); "
                                 f"add it with `amlvc init --remote {name} …`")
            return found
        if self.default_remote is not None:
            return self.remote(self.default_remote)
        if len(self.remotes) == 1:
            return self.remotes[0]
        if not self.remotes:
            raise ConfigError(f"{CONFIG_FILE}: no remote configured; add one with "
                              f"`amlvc init --remote NAME --endpoint URL --workspace-id ID`")
        raise UsageError(f"several remotes ({', '.join(self.names())}); choose one with --remote "
                         f"or set default_remote in {CONFIG_FILE}")

    def with_remote(self, remote: Remote) -> Config:
        """A copy with `remote` added (or replacing the remote of the same name, in place; its web-service settings
        are kept unless `remote` brings its own)."""
        validate_remote(remote, CONFIG_FILE)
        old = self.get(remote.name)
        if old is not None and remote.webservices is None:
            remote = replace(remote, webservices=old.webservices)
        if old is not None:
            remotes = tuple(remote if r.name == remote.name else r for r in self.remotes)
        else:
            remotes = (*self.remotes, remote)
        return replace(self, remotes=remotes)


def config_path(root: Path) -> Path:
    return root / CONFIG_FILE


def parse(text: str, source: str = CONFIG_FILE) -> Config:
    """Parse and validate amlvc.toml text; ConfigError (exit 3) naming the file and the key on any problem."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{source}: invalid TOML ({exc}); fix the file") from None
    amlvc = data.get("amlvc", {})
    if not isinstance(amlvc, dict):
        raise ConfigError(f"{source}: [amlvc] must be a table")
    fmt = amlvc.get("format", FORMAT)
    if fmt != FORMAT or isinstance(fmt, bool):
        raise ConfigError(f"{source}: amlvc.format: this amlvc reads format {FORMAT}, the file says {fmt!r}; "
                          f"upgrade amlvc")
    default = amlvc.get("default_remote")
    if default is not None and not isinstance(default, str):
        raise ConfigError(f"{source}: amlvc.default_remote: expected a string")
    tables = data.get("remotes", {})
    if not isinstance(tables, dict):
        raise ConfigError(f"{source}: remotes: expected tables like [remotes.dev]")
    remotes = []
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ConfigError(f"{source}: remotes.{name}: expected a table")
        unknown = sorted(set(table) - {*_REMOTE_KEYS, WEBSERVICES_TABLE})
        if unknown:
            raise ConfigError(f"{source}: remotes.{name}.{unknown[0]}: unknown key "
                              f"(known: {', '.join((*_REMOTE_KEYS, WEBSERVICES_TABLE))})")
        for key, value in table.items():
            if not isinstance(value, str) and key != WEBSERVICES_TABLE:
                raise ConfigError(f"{source}: remotes.{name}.{key}: expected a string")
        if "workspace_id" not in table:
            raise ConfigError(f"{source}: remotes.{name}.workspace_id: missing")
        services = table.get(WEBSERVICES_TABLE)
        remote = Remote(name=name, workspace_id=table["workspace_id"], endpoint=table.get("endpoint"),
                        location=table.get("location"), token_env=table.get("token_env"),
                        webservices=parse_webservices(services, f"{source}: remotes.{name}.{WEBSERVICES_TABLE}")
                        if services is not None else None)
        validate_remote(remote, source)
        remotes.append(remote)
    if default is not None and default not in tables:
        raise ConfigError(f"{source}: amlvc.default_remote: no remote named {default!r}")
    extra = {k: v for k, v in data.items() if k not in ("amlvc", "remotes")}
    extra_amlvc = {k: v for k, v in amlvc.items() if k not in ("format", "default_remote")}
    if extra_amlvc:
        extra["amlvc"] = extra_amlvc
    return Config(format=FORMAT, default_remote=default, remotes=tuple(remotes), extra=extra)


def validate_remote(remote: Remote, source: str = CONFIG_FILE) -> None:
    where = f"{source}: remotes.{remote.name}"
    if not REMOTE_NAME.match(remote.name) or remote.name == IMPORT_REMOTE:
        raise ConfigError(f"{source}: remote name {remote.name!r}: use letters, digits, '-', '_' or '.' "
                          f"(at most 64), and not {IMPORT_REMOTE!r}, which amlvc import uses")
    if not WORKSPACE_ID.match(remote.workspace_id):
        raise ConfigError(f"{where}.workspace_id: expected 32 lowercase hex characters, got {remote.workspace_id!r}")
    if (remote.endpoint is None) == (remote.location is None):
        raise ConfigError(f"{where}: give exactly one of endpoint (a URL) or location (an Azure region)")
    if remote.endpoint is not None:
        parts = urlsplit(remote.endpoint)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ConfigError(f"{where}.endpoint: expected an http(s) URL, got {remote.endpoint!r}")
        if parts.username or parts.password or parts.query:
            # a token pasted into the URL would end up in git; tokens belong in the environment
            raise ConfigError(f"{where}.endpoint: must not carry credentials or a query string; "
                              f"put the token in an environment variable")
    if remote.location is not None and not remote.location.strip():
        raise ConfigError(f"{where}.location: empty region name")
    if remote.token_env is not None and (looks_like_token(remote.token_env) or not ENV_NAME.match(remote.token_env)):
        shown = "this value looks like a token" if looks_like_token(remote.token_env) else repr(remote.token_env)
        raise ConfigError(f"{where}.token_env: {shown}; give the name of the environment variable holding the "
                          f"token, never the token")


def load(root: Path) -> Config:
    """Read `root/amlvc.toml`; ConfigError when it is missing or invalid."""
    path = config_path(root)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: missing; run `amlvc init`") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read ({exc.__class__.__name__}); fix the file") from None
    return parse(text, str(path))


def dumps(config: Config) -> bytes:
    """The file's text: [amlvc] first, then [remotes.NAME] in order, then any other tables kept from the file."""
    amlvc: dict[str, Any] = {"format": config.format}
    if config.default_remote is not None:
        amlvc["default_remote"] = config.default_remote
    extra = dict(config.extra)
    amlvc.update(extra.pop("amlvc", {}))
    data: dict[str, Any] = {"amlvc": amlvc}
    if config.remotes:
        data["remotes"] = {r.name: r.to_toml() for r in config.remotes}
    data.update(extra)
    header = "# amlvc settings: workspaces (\"remotes\") and options. Never put a token or key here.\n"
    return (header + tomli_w.dumps(data)).encode("utf-8")


def find_repository(cwd: Path) -> Path:
    """The amlvc repository containing `cwd`, with its amlvc.toml checked (a broken file stops every command)."""
    root = repo.find_root(cwd)
    load(root)
    return root
