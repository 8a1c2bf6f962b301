"""Secret detection and `${secret:NAME}` placeholders: by parameter name, credential descriptor and value shape."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from typing import Any

from amlvc import rules
from amlvc.canonical.paths import Where, pointer_of
from amlvc.errors import MissingSecret

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_NON_ALNUM = re.compile(r"[^A-Za-z0-9]+")
_NODE_COUNTER = re.compile(r"-(\d+)$")
PLACEHOLDER_MARK = "${secret:"


def words(name: str) -> list[str]:
    """Lower-cased words of a parameter name: 'storage_key' and 'storageKey' both give ['storage', 'key']."""
    return [w for w in _NON_ALNUM.split(_CAMEL.sub(" ", name).lower()) if w]


@lru_cache(maxsize=4096)
def is_secret_name(name: str) -> bool:
    """A parameter that holds a secret by its name alone (rules.SECRET_PARAMETER_NAMES and last words)."""
    parts = words(name)
    if not parts:
        return False
    return " ".join(parts) in rules.SECRET_PARAMETER_NAMES or parts[-1] in rules.SECRET_NAME_LAST_WORDS


def is_credential_definition(definition: Any) -> bool:
    """A web-service parameter definition that declares a credential."""
    if not isinstance(definition, dict):
        return False
    return (definition.get("ParameterType") in rules.SECRET_PARAMETER_TYPES
            or definition.get("CredentialDescriptor") is not None)


def placeholder(name: str) -> str:
    return "${secret:" + name + "}"


def is_placeholder(value: str) -> bool:
    return rules.SECRET_PLACEHOLDER.fullmatch(value) is not None


@lru_cache(maxsize=4096)
def base_name(label: str) -> str:
    """Upper snake case of a parameter name ('Account Key' -> 'ACCOUNT_KEY')."""
    snake = "_".join(words(label)).upper()
    return snake or "SECRET"


def node_suffix(node_id: str) -> str:
    """The node's short counter ('…-172' -> '172'), else a slug of its id."""
    match = _NODE_COUNTER.search(node_id)
    if match:
        return match.group(1)
    return (_NON_ALNUM.sub("", node_id)[:8] or "NODE").upper()


class SecretNamer:
    """Allocates unique NAMEs and collects NAME -> value for one document."""

    def __init__(self) -> None:
        self.found: dict[str, str] = {}

    def allocate(self, label: str, node_id: str | None, value: str, suffix: str = "") -> str:
        """A fresh NAME for the secret `value` of parameter `label` (on node `node_id`, if any)."""
        base = base_name(label) + suffix
        first = f"{base}_{node_suffix(node_id)}" if node_id is not None else base
        candidates = [first]
        if node_id is not None:
            hex8 = re.sub(r"[^0-9a-fA-F]", "", node_id)[:8].upper() or "X"
            candidates.append(f"{first}_{hex8}")
        name = next((c for c in candidates if c not in self.found), None)
        counter = 2
        while name is None:
            candidate = f"{candidates[-1]}_{counter}"
            name = candidate if candidate not in self.found else None
            counter += 1
        self.found[name] = value
        return name


def _might_hold_secret(value: str) -> bool:
    return "=" in value or "%3" in value or len(value) >= 88


def scrub_shapes(value: str, label: str, node_id: str | None, namer: SecretNamer, suffix: str = "") -> str:
    """Replace secret-shaped parts (AccountKey=, sig=, Password=, bare storage keys) by placeholders."""
    if not _might_hold_secret(value):
        return value
    for _kind, pattern in rules.SECRET_VALUE_PATTERNS:
        pieces: list[str] = []
        last = 0
        for match in pattern.finditer(value):
            secret = match.group("secret")
            if PLACEHOLDER_MARK in secret or not secret:
                continue
            start, end = match.span("secret")
            pieces.append(value[last:start])
            pieces.append(placeholder(namer.allocate(label, node_id, secret, suffix)))
            last = end
        if pieces:
            pieces.append(value[last:])
            value = "".join(pieces)
    return value


def scrub(value: str, label: str, node_id: str | None, namer: SecretNamer, *, whole: bool, suffix: str = "") -> str:
    """The value with its secret parts replaced: all of it when `whole`, else the secret-shaped parts.

    NAME is derived from `label` (the parameter name) + `suffix` + the node's counter.
    """
    if whole:
        if value == "" or is_placeholder(value):
            return value
        return placeholder(namer.allocate(label, node_id, value, suffix))
    return scrub_shapes(value, label, node_id, namer, suffix)


def fill(value: str, secrets: Mapping[str, str] | None, source: str, path: Where) -> str:
    """Fill `${secret:NAME}` placeholders from `secrets`; None leaves them as they are."""
    if secrets is None or PLACEHOLDER_MARK not in value:
        return value

    def substitute(match: re.Match[str]) -> str:
        name = match.group("name")
        found = secrets.get(name)
        if found is None:
            raise MissingSecret(
                f"{source}: {pointer_of(path)}: no value for secret {name}; set {rules.SECRET_ENV_PREFIX}{name} "
                f"or add it to {rules.SECRETS_FILE}"
            )
        return found

    return rules.SECRET_PLACEHOLDER.sub(substitute, value)


def placeholder_names(value: str) -> list[str]:
    """Names of the placeholders in a string."""
    if PLACEHOLDER_MARK not in value:
        return []
    return [m.group("name") for m in rules.SECRET_PLACEHOLDER.finditer(value)]


def scrub_strings(value: Any, namer: SecretNamer, label: str = "", node_id: str | None = None) -> Any:
    """`value` with every secret-shaped part of every string replaced by a placeholder (SAS `sig=`,
    `AccountKey=`, `Password=`, connection strings, bare storage keys), wherever it is: free text such as
    Description, Summary and node comments too. amlvc's own annotations (keys starting with '$') are left
    alone; NAMEs come from the key the string is under (and the node it is on)."""
    if isinstance(value, str):
        return scrub_shapes(value, label or "value", node_id, namer)
    if isinstance(value, list):
        return [scrub_strings(item, namer, label, node_id) for item in value]
    if isinstance(value, dict):
        return {key: item if key[:1] == "$" else scrub_strings(item, namer, key, node_id)
                for key, item in value.items()}
    return value


def redact(text: str) -> str:
    """`text` with its secret-shaped parts cut out (for names, slugs and commit messages, which have no
    placeholders to fill back)."""
    if not _might_hold_secret(text):
        return text
    for _kind, pattern in rules.SECRET_VALUE_PATTERNS:
        text = pattern.sub(lambda m: m.group(0)[: m.start("secret") - m.start(0)] + "…", text)
    return text


def fill_strings(value: Any, secrets: Mapping[str, str], source: str, path: Where = "") -> Any:
    """`value` with every placeholder in every string filled from `secrets` (MissingSecret naming the path)."""
    if isinstance(value, str):
        return fill(value, secrets, source, path) if PLACEHOLDER_MARK in value else value
    if isinstance(value, list):
        return [fill_strings(item, secrets, source, (path, index)) for index, item in enumerate(value)]
    if isinstance(value, dict):
        return {key: fill_strings(item, secrets, source, (path, key)) for key, item in value.items()}
    return value


def placeholders_of(files: Mapping[str, bytes]) -> tuple[str, ...]:
    """The placeholder names used in some files' bytes, sorted."""
    names: set[str] = set()
    for data in files.values():
        names.update(placeholder_names(data.decode("utf-8", "replace")))
    return tuple(sorted(names))


def placeholders_in(value: Any) -> set[str]:
    """Names of the placeholders anywhere in a JSON value (strings inside dicts and lists, at any depth)."""
    if isinstance(value, str):
        return set(placeholder_names(value))
    if isinstance(value, dict):
        return {name for item in value.values() for name in placeholders_in(item)}
    if isinstance(value, list):
        return {name for item in value for name in placeholders_in(item)}
    return set()
