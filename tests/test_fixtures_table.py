"""The fixture table: every fixture round-trips exactly, and every base--variant pair, imported into a real
repository one after the other, gives a git diff that touches only what SPEC section 2 allows."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from amlvc.canonical.jsonio import load_json_file
from amlvc.canonical.roundtrip import verify_roundtrip
from amlvc.offline import exporter, importer
from amlvc.offline import init as offline
from tests.conftest import FIXTURES

ALL_FIXTURES = sorted(p.name for p in FIXTURES.glob("*--*.json"))
R_SCRIPT = "scripts/5e7a9c1b-3d5f-4a7b-9c1d-3e5f7a9b1c2d-41--r-script.R"


@dataclass(frozen=True)
class Expect:
    """What the commit importing the variant (after its base) may change in the experiment's directory."""

    files: frozenset[str]  # exactly these files change (names relative to experiments/<slug>/)
    max_lines: dict[str, int] = field(default_factory=dict)  # file -> at most this many added + removed lines
    mentions: tuple[str, ...] = ()  # text the added lines must contain


TABLE: dict[str, Expect] = {
    "training--param-changed.json": Expect(frozenset({"experiment.json"}), {"experiment.json": 2}, ("1E-06",)),
    "training--node-dragged.json": Expect(frozenset({"layout.json"}), {"layout.json": 2}, ("310,150,200,200",)),
    "training--script-line.json": Expect(frozenset({R_SCRIPT}), {R_SCRIPT: 2}, ("all.x = FALSE",)),
    "training--node-added.json": Expect(
        frozenset({"experiment.json", "layout.json"}), {"layout.json": 6},
        ("0b2d4f6a-8c1e-4a3b-9d5f-7e9a1c3b5d7f-3", "Convert to CSV")),
    "training--edge-rewired.json": Expect(frozenset({"experiment.json"}), {"experiment.json": 8},
                                          ("-14:Results dataset",)),
    "training--asset-bumped.json": Expect(frozenset({"experiment.json", "layout.json"}),
                                          {"experiment.json": 4, "layout.json": 2}, ("v1-default-24",)),
    "training--snapshot-1.json": Expect(frozenset({"experiment.json", R_SCRIPT}), {"experiment.json": 2, R_SCRIPT: 2}),
    "training--snapshot-2.json": Expect(frozenset()),  # same graph as the leaf: nothing to commit in the files
    "predictive--input-renamed.json": Expect(frozenset({"experiment.json"}), {"experiment.json": 2}, ("kunde",)),
    "webservice--model-patched.json": Expect(frozenset({"webservice.json"}), {"webservice.json": 2},
                                             ("9c1e3a5b7d9f4c1e3a5b7d9f1c3e5a7b.ilearner",)),
}


def git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, check=True, capture_output=True, text=True).stdout


def test_every_variant_has_a_row() -> None:
    variants = {name for name in ALL_FIXTURES if not name.endswith("--base.json")}
    assert variants - {"webservice--studio-export.json"} == set(TABLE)


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_round_trip_is_exact(name: str) -> None:
    path = FIXTURES / name
    assert verify_roundtrip(load_json_file(path), str(path)) == []


def test_round_trip_of_the_captured_sample(captured: Path) -> None:
    path = captured / "experiment-training-2016.json"
    assert verify_roundtrip(load_json_file(path), str(path)) == []


@pytest.mark.parametrize("variant", sorted(TABLE))
def test_variant_diff_touches_only_what_the_spec_allows(tmp_path: Path, variant: str) -> None:
    base = FIXTURES / (variant.split("--")[0] + "--base.json")
    offline.init(tmp_path)
    first = importer.import_files(tmp_path, [base])
    slug = first.imported[0].slug
    second = importer.import_files(tmp_path, [FIXTURES / variant])
    assert second.imported[0].slug == slug  # the same experiment (or web service) again, by id or by title
    expect = TABLE[variant]
    prefix = f"experiments/{slug}/"
    numstat = git(tmp_path, "diff", "--numstat", f"{first.commit}", "HEAD", "--").splitlines()
    changed: dict[str, int] = {}
    for line in numstat:
        added, removed, path = line.split("\t")
        if path == "amlvc.lock":
            continue  # Etag, RunId, identity and content hash of the import move with every variant
        assert path.startswith(prefix), f"{variant} changed {path} outside its experiment"
        changed[path[len(prefix):]] = int(added) + int(removed)
    assert set(changed) == set(expect.files), f"{variant}: {changed}"
    for name, limit in expect.max_lines.items():
        assert changed[name] <= limit, f"{variant}: {name} has {changed[name]} changed lines, at most {limit}"
    patch = git(tmp_path, "diff", f"{first.commit}", "HEAD", "--", prefix)
    added_text = "\n".join(line for line in patch.splitlines() if line.startswith("+"))
    for text in expect.mentions:
        assert text in added_text, f"{variant}: {text!r} not among the added lines"
    if not expect.files:
        assert "amlvc.lock" in git(tmp_path, "show", "--name-only", "--format=", "HEAD") or second.commit is None


def test_reimport_of_the_same_file_commits_nothing(tmp_path: Path) -> None:
    offline.init(tmp_path)
    importer.import_files(tmp_path, [FIXTURES / "training--base.json"])
    again = importer.import_files(tmp_path, [FIXTURES / "training--base.json"])
    assert again.commit is None and again.imported[0].changed == ()


def test_raw_export_diff_is_noisier_than_the_normalized_one(tmp_path: Path) -> None:
    """The point of it all: the raw files of a one-parameter change differ in many lines (new Etag, new SAS
    signatures on every GET); the normalized files in at most two."""
    base = (FIXTURES / "training--base.json").read_text(encoding="utf-8").splitlines()
    variant = (FIXTURES / "training--param-changed.json").read_text(encoding="utf-8").splitlines()
    raw_changed = sum(1 for a, b in zip(base, variant, strict=True) if a != b)
    assert raw_changed > 20


def _fold(value: object) -> object:
    if isinstance(value, dict):
        return {str(k).lower(): _fold(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_fold(v) for v in value]
    return value


@pytest.mark.parametrize("name", ALL_FIXTURES)
def test_import_then_export_gives_back_the_document(tmp_path: Path, name: str) -> None:
    """Through the repository and back: the exported document equals the fixture, secrets filled from the
    local secrets file, except the last run's state (Status, NodeStatuses, ParentExperimentId), which is
    kept neither in git nor in the lock. WSDs come back camelCase."""
    import json

    offline.init(tmp_path)
    imported = importer.import_files(tmp_path, [FIXTURES / name]).imported[0]
    result = exporter.export(tmp_path, imported.slug, webservice=imported.kind == "wsd")
    assert result.missing_secrets == ()
    original = json.loads((FIXTURES / name).read_text(encoding="utf-8"))
    exported = json.loads(result.data)
    if imported.kind == "wsd":
        assert _fold(exported) == _fold(original)
        return
    run_state = {"Status", "NodeStatuses", "ParentExperimentId"}
    for doc in (original, exported):  # deploy ids are server state too
        for key in ("WebServiceGroupId", "ModelPackageId", "RunId", "ArmWebServiceId"):
            doc["WebService"][key] = None
    assert {k: v for k, v in exported.items() if k not in run_state} == \
        {k: v for k, v in original.items() if k not in run_state}
    assert [k for k in exported if k not in run_state] == [k for k in original if k not in run_state]


def test_generate_py_writes_exactly_the_committed_fixtures(tmp_path: Path) -> None:
    """The fixtures are the generator's output ("edit the script, not the JSON"): nothing stale, nothing extra."""
    import sys

    subprocess.run([sys.executable, str(FIXTURES / "generate.py"), str(tmp_path)], check=True, capture_output=True)
    written = {p.name: p.read_bytes() for p in tmp_path.glob("*.json")}
    committed = {p.name: p.read_bytes() for p in FIXTURES.glob("*.json")}
    assert sorted(written) == sorted(committed)
    stale = [name for name in written if written[name] != committed[name]]
    assert not stale, f"fixtures differ from `python fixtures/generate.py`: {stale}"
