"""Run a composite GitHub Action's `run:` steps as the runner does: bash -eo pipefail, `${{ }}` expressions from
inputs, github and earlier steps' outputs, GITHUB_OUTPUT / GITHUB_STEP_SUMMARY files; `uses:` steps are listed."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

_EXPRESSION = re.compile(r"\$\{\{\s*([\w.-]+)\s*\}\}")


@dataclass
class Run:
    """What the steps did: each step's name and exit code, outputs by step id, the job summary, `uses:` steps."""

    steps: list[tuple[str, int, str]] = field(default_factory=list)  # (name, exit code, stdout + stderr)
    outputs: dict[str, dict[str, str]] = field(default_factory=dict)
    summary: str = ""
    used: list[tuple[str, dict[str, str]]] = field(default_factory=list)

    def log(self) -> str:
        return "\n".join(f"--- {name} ({code})\n{text}" for name, code, text in self.steps)


def _lookup(context: dict[str, Any], path: str) -> str:
    value: Any = context
    for part in path.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    if isinstance(value, bool):
        return str(value).lower()
    return "" if value is None else str(value)


def run_action(action: Path, workdir: Path, *, inputs: dict[str, str], github: dict[str, Any], env: dict[str, str]
               ) -> Run:
    """Run the action's steps in `workdir` until one fails, as a composite action stops."""
    spec = yaml.safe_load(action.read_text(encoding="utf-8"))
    defaults = {name: str(item.get("default", "")) for name, item in spec.get("inputs", {}).items()}
    run = Run()
    context: dict[str, Any] = {"inputs": defaults, "github": github, "steps": {}}
    context["inputs"] = {k: _EXPRESSION.sub(lambda m: _lookup(context, m.group(1)), v) for k, v in defaults.items()}
    context["inputs"].update(inputs)
    summary = workdir.parent / "step-summary.md"
    for index, step in enumerate(spec["runs"]["steps"]):
        def expand(text: str) -> str:
            return _EXPRESSION.sub(lambda m: _lookup(context, m.group(1)), text)

        if "uses" in step:
            run.used.append((step["uses"], {k: expand(str(v)) for k, v in (step.get("with") or {}).items()}))
            continue
        assert step.get("shell") == "bash", f"step {index} needs shell: bash in a composite action"
        assert "${{" not in step["run"], "expressions go through env:, never into the script"
        output = workdir.parent / f"output-{index}"
        output.write_text("", encoding="utf-8")
        script = workdir.parent / f"step-{index}.sh"
        script.write_text(step["run"], encoding="utf-8")
        step_env = {**os.environ, **env, "GITHUB_OUTPUT": str(output), "GITHUB_STEP_SUMMARY": str(summary),
                    **{k: expand(str(v)) for k, v in (step.get("env") or {}).items()}}
        done = subprocess.run(["bash", "--noprofile", "--norc", "-eo", "pipefail", str(script)], cwd=workdir,
                              env=step_env, capture_output=True, text=True, timeout=300)
        run.steps.append((step.get("name", f"step {index}"), done.returncode, done.stdout + done.stderr))
        if "id" in step:
            pairs = [line.split("=", 1) for line in output.read_text(encoding="utf-8").splitlines() if "=" in line]
            run.outputs[step["id"]] = dict(pairs)
            context["steps"][step["id"]] = {"outputs": run.outputs[step["id"]]}
        if done.returncode != 0:
            break
    run.summary = summary.read_text(encoding="utf-8") if summary.is_file() else ""
    return run
