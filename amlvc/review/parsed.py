"""One experiment's canonical files parsed: experiment.json, layout.json, scripts and webservice.json."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from amlvc.canonical.checks import experiment_shape, layout_shape
from amlvc.canonical.jsonio import load_canonical
from amlvc.rules import EXPERIMENT_FILE, LAYOUT_FILE, SCRIPTS_DIR, WEBSERVICE_FILE


@dataclass(frozen=True)
class Parsed:
    """experiment.json, layout.json, scripts (path -> text) and webservice.json of one experiment, parsed."""

    experiment: dict[str, Any]
    layout: dict[str, Any]
    scripts: dict[str, str]
    webservice: dict[str, Any] | None

    @classmethod
    def from_files(cls, files: Mapping[str, bytes], source: str = "<files>") -> Parsed:
        """Parse an experiment directory's files (paths relative to it); conflict markers are refused."""
        scripts = {path: data.decode("utf-8", "replace") for path, data in files.items()
                   if path.startswith(SCRIPTS_DIR + "/")}
        experiment = experiment_shape(load_canonical(files.get(EXPERIMENT_FILE), f"{source}/{EXPERIMENT_FILE}"),
                                      f"{source}/{EXPERIMENT_FILE}")
        layout = layout_shape(load_canonical(files.get(LAYOUT_FILE), f"{source}/{LAYOUT_FILE}"),
                              f"{source}/{LAYOUT_FILE}")
        webservice = (load_canonical(files[WEBSERVICE_FILE], f"{source}/{WEBSERVICE_FILE}")
                      if WEBSERVICE_FILE in files else None)
        return cls(experiment, layout, scripts, webservice)

    def as_document(self) -> dict[str, Any]:
        """One JSON document holding every file (the value the per-experiment JSON patch applies to)."""
        doc: dict[str, Any] = {EXPERIMENT_FILE: self.experiment, LAYOUT_FILE: self.layout}
        doc.update(self.scripts)
        if self.webservice is not None:
            doc[WEBSERVICE_FILE] = self.webservice
        return doc
