"""Backups before a forced overwrite: the workspace's current version as a commit under refs/amlvc/backup/."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from amlvc import repo
from amlvc.canonical.normalize import normalize
from amlvc.canonical.secrets import redact
from amlvc.rules import BACKUP_REF_PREFIX
from amlvc.sync.remote import Target
from amlvc.worktree import experiments, secretfile


def save_backup(root: Path, target: Target, slug: str, experiment_id: str, etag: str, before: str) -> str:
    """GET the experiment and store it, normalized, as HEAD's tree with its folder replaced; returns the ref.

    The ref is `refs/amlvc/backup/<remote>/<slug>/<UTC time>`; the secret values scrubbed from the backup
    stay local, in the secrets file under "<slug>@<time>", so the backup can be pushed back as it was.
    """
    current = target.client.get_experiment(experiment_id)
    norm = normalize(current, source=f"{target.name}:{experiment_id}")
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    ref = f"{BACKUP_REF_PREFIX}/{target.name}/{slug}/{stamp}"
    secretfile.store(root, target.name, {f"{slug}@{stamp}": dict(norm.secrets)})
    repo.write_backup(root, ref, experiments.path(slug), norm.files,
                      redact(f"Backup of '{slug}' from workspace '{target.name}' before {before}\n\n"
                      f"Amlvc-Remote: {target.name}\nAmlvc-Experiment-Id: {experiment_id}\nAmlvc-Etag: {etag}\n"))
    return ref
