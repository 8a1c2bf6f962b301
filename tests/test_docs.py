"""Docs are tested: the README's exit-code table and docs/cli.md follow the code."""

from __future__ import annotations

import re
import sys

from conftest import ROOT

from amlvc.errors import EXIT_CODE_MEANINGS


def test_readme_exit_code_table_matches_errors_py() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", readme, flags=re.MULTILINE))
    assert {int(code): text for code, text in rows.items()} == {int(c): t for c, t in EXIT_CODE_MEANINGS.items()}


def test_readme_starts_with_demo_and_test_commands() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sh\n(.+?)\n```", readme, flags=re.DOTALL)
    assert "amlvc demo" in blocks[0]
    assert "python -m pytest" in blocks[1]
    ci = (ROOT / ".ci" / "run").read_text(encoding="utf-8")
    assert blocks[1].strip() in ci


def test_cli_reference_is_current() -> None:
    sys.path.insert(0, str(ROOT / "docs"))
    try:
        import gen_cli
    finally:
        sys.path.pop(0)
    assert (ROOT / "docs" / "cli.md").read_text(encoding="utf-8") == gen_cli.render(), (
        "docs/cli.md is stale; run `python docs/gen_cli.py > docs/cli.md`"
    )
