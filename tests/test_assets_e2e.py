"""The dataset → run → model → bump lifecycle end to end, through the real command line, over loopback."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import assetkit
from assetkit import MODEL, MODEL_SLUG, PREDICTIVE, TRAIN_NODE, TRAINING, as_json, git, ok


def test_upload_outdated_bump_push_run_promote_bump_models_push_run(tmp_path: Path, run_cli: Any) -> None:
    with assetkit.world(tmp_path, run_cli) as (_server, root):
        # A new version of the demo dataset.
        upload = tmp_path / "kunden-2017.csv"
        upload.write_bytes(b"Kunde,Tarif,Gekuendigt\r\n1,M,0\r\n2,L,1\r\n")
        uploaded = as_json(run_cli, root, "dataset", "upload", str(upload), "--name", assetkit.DATASET)
        assert uploaded["family"] == assetkit.DATASET_FAMILY and uploaded["version"] == 2
        assert not uploaded["new_family"] and uploaded["schema_status"] == "Complete"

        # outdated lists the training experiment (and the predictive one, which reads the same dataset).
        report = as_json(run_cli, root, "outdated")
        rows = {(i["experiment"], i["kind"]): i for i in report["outdated"]}
        row = rows[(TRAINING, "dataset")]
        assert (row["name"], row["current"]["version"], row["latest"]["version"]) == (assetkit.DATASET, 1, 2)
        assert row["latest"]["id"] == uploaded["id"]
        assert assetkit.cli(run_cli, root, "outdated", "--exit-code").exit_code == 1

        # bump: a local edit; the diff names the dataset and its versions.
        bumped = ok(run_cli, root, "bump", TRAINING, "--datasets")
        assert bumped.stdout.strip() == f"{TRAINING}: ~ dataset {assetkit.DATASET}: version 1 → 2"
        experiment = (root / "experiments" / TRAINING / "experiment.json").read_text(encoding="utf-8")
        layout = (root / "experiments" / TRAINING / "layout.json").read_text(encoding="utf-8")
        assert uploaded["id"] in experiment and uploaded["id"] in layout
        diff = ok(run_cli, root, "diff").stdout
        assert f"~ dataset {assetkit.DATASET}: version 1 → 2" in diff
        git(root, "commit", "-qam", "Kundenstamm 2017")

        ok(run_cli, root, "push", TRAINING)
        ran = ok(run_cli, root, "run", TRAINING, "--wait")
        assert ran.stdout.startswith(f"Finished {TRAINING}")
        assert "Recorded the run in amlvc.lock" in ran.stderr

        promoted = as_json(run_cli, root, "model", "promote", TRAINING, TRAIN_NODE, "--name", MODEL)
        assert promoted["version"] == 2 and promoted["new_model"] is False
        manifest = json.loads((root / "models" / f"{MODEL_SLUG}.json").read_text(encoding="utf-8"))
        version = manifest["versions"][-1]
        stored = root / ".amlvc" / "objects" / "sha256" / version["sha256"][:2] / version["sha256"][2:]
        assert hashlib.sha256(stored.read_bytes()).hexdigest() == version["sha256"]
        assert version["source"]["experiment_slug"] == TRAINING and version["source"]["node"] == TRAIN_NODE
        assert git(root, "status", "--porcelain", "models") == ""  # committed
        assert f"+ model {MODEL}@2 (sha256 {version['sha256'][:8]}…, from {TRAINING} run " in git(
            root, "log", "-1", "--format=%B")

        report = as_json(run_cli, root, "outdated", PREDICTIVE)
        kinds = {(i["kind"], i["current"]["version"], i["latest"]["version"]) for i in report["outdated"]}
        assert ("trainedmodel", 1, 2) in kinds
        ok(run_cli, root, "bump", PREDICTIVE, "--models")
        assert f"~ trained model {MODEL}: version 1 → 2" in ok(run_cli, root, "diff").stdout
        git(root, "commit", "-qam", "model 2")
        ok(run_cli, root, "push", PREDICTIVE)
        assert ok(run_cli, root, "run", PREDICTIVE, "--wait").stdout.startswith(f"Finished {PREDICTIVE}")
        left = as_json(run_cli, root, "outdated", PREDICTIVE)["outdated"]
        assert [i["kind"] for i in left] == ["dataset"]  # only what --models left alone
