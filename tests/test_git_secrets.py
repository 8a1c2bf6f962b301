"""No secret value from an imported document reaches any git object (SPEC 2.7): the captured sample and the
project's fixtures are imported into real repositories and every object of every revision is searched."""

from __future__ import annotations

import json
import re
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from amlvc.offline import exporter, importer
from amlvc.offline import init as offline
from tests.conftest import FIXTURES

SECRET_NAMES = re.compile(r"(?i)(^|[ _])(key|password|pwd|secret|token)$")
ACCOUNT_KEY = re.compile(r"AccountKey=([^;\"]+)")


def git(root: Path, *args: str, data: bytes | None = None) -> bytes:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, input=data).stdout


def _walk(value: Any) -> Iterator[Any]:
    yield value
    if isinstance(value, dict):
        for item in value.values():
            yield from _walk(item)
    elif isinstance(value, list):
        for item in value:
            yield from _walk(item)


def _sas_signatures(text: str) -> Iterator[str]:
    """`signature=` of Studio's AccessCredential and `sig=` of the blob SAS URL inside it (or of any URI)."""
    if "?" not in text:
        return
    query = parse_qs(urlsplit(text).query if "://" in text else text.split("?", 1)[1])
    yield from query.get("signature", [])
    yield from query.get("sig", [])
    for inner in query.get("sharedAccessUri", []):
        yield from parse_qs(urlsplit(inner).query).get("sig", [])


def secret_values(doc: Any) -> set[str]:
    """Every secret value in a document: parameters named like keys or passwords, `AccountKey=` parts of
    connection strings, SAS signatures, and a WSD's storage account key — in the forms they take in the file."""
    found: set[str] = set()
    for item in _walk(doc):
        if isinstance(item, dict):
            name, value = item.get("Name"), item.get("Value")
            if isinstance(name, str) and isinstance(value, str) and SECRET_NAMES.search(name):
                found.add(value)
            lowered = {str(k).lower(): v for k, v in item.items()}
            if isinstance(lowered.get("storageaccount"), dict):
                key = {k.lower(): v for k, v in lowered["storageaccount"].items()}.get("key")
                if isinstance(key, str):
                    found.add(key)
        elif isinstance(item, str):
            found.update(ACCOUNT_KEY.findall(item))
            for signature in _sas_signatures(item):
                found.update({signature, unquote(signature)})
    return {value for value in found if len(value) >= 16}  # "" and short non-secrets are not evidence


def assert_not_in_git(root: Path, secrets: set[str]) -> None:
    revisions = git(root, "rev-list", "--all").decode().split()
    assert revisions
    for value in secrets:
        grep = subprocess.run(["git", "grep", "-F", "-l", "-e", value, *revisions], cwd=root, capture_output=True)
        assert grep.returncode == 1, f"secret {value[:6]}… found by git grep: {grep.stdout[:200]!r}"
    objects = git(root, "cat-file", "--batch-all-objects", "--batch")
    assert objects
    for value in secrets:
        assert value.encode() not in objects, f"secret {value[:6]}… found in a git object"


def test_captured_sample_leaves_no_secret_in_git(tmp_path: Path, captured: Path) -> None:
    source = captured / "experiment-training-2016.json"
    doc = json.loads(source.read_text(encoding="utf-8-sig"))
    secrets = secret_values(doc)
    account_key = next(p["Value"] for n in doc["Graph"]["ModuleNodes"] for p in n["ModuleParameters"]
                       if p["Name"] == "Account Key")
    assert account_key in secrets
    assert sum(1 for s in secrets if len(s) > 20) > 10  # the storage key and many SAS signatures
    offline.init(tmp_path)
    result = importer.import_files(tmp_path, [source])
    assert result.commit is not None
    assert_not_in_git(tmp_path, secrets)
    # the values are kept locally, outside git, readable by the user only
    stored = (tmp_path / ".amlvc" / "secrets.json").read_text(encoding="utf-8")
    assert account_key in stored
    assert stat.S_IMODE((tmp_path / ".amlvc" / "secrets.json").stat().st_mode) == 0o600
    assert git(tmp_path, "ls-files", ".amlvc").strip() == b""
    assert account_key not in (tmp_path / "amlvc.lock").read_text(encoding="utf-8")


@pytest.mark.parametrize("names", [
    ["training--base.json", "training--snapshot-1.json", "predictive--base.json", "webservice--base.json"],
    ["webservice--studio-export.json"],
])
def test_fixtures_leave_no_secret_in_git(tmp_path: Path, names: list[str]) -> None:
    secrets: set[str] = set()
    for name in names:
        secrets |= secret_values(json.loads((FIXTURES / name).read_text(encoding="utf-8")))
    assert secrets
    offline.init(tmp_path)
    for name in names:  # one commit per file: secrets must stay out of every revision, not only HEAD
        importer.import_files(tmp_path, [FIXTURES / name])
    assert_not_in_git(tmp_path, secrets)


def test_export_fills_the_secrets_back(tmp_path: Path) -> None:
    source = FIXTURES / "training--base.json"
    original = json.loads(source.read_text(encoding="utf-8"))
    offline.init(tmp_path)
    importer.import_files(tmp_path, [source])
    exported = json.loads(exporter.export(tmp_path, "kundigung-training").data)
    assert exported["Graph"] == original["Graph"]
    assert not exporter.export(tmp_path, "kundigung-training").missing_secrets
