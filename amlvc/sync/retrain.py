"""`amlvc retrain TRAINING_SERVICE --into SERVICE[/ENDPOINT]`: the retraining articles as one reviewable change.

Run the training service's batch job (its inputs put into storage), fetch the `.iLearner` output into the object
store, add it as the next version of the model the target serves (models/<name>.json, with the job's evaluation
output), point the endpoint (classic) or the trained-model asset (ARM) at it in service.json, and commit it all
(`retrain: churn-model@5 (AUC 0.81 → 0.83)`). With `--push` the change is pushed (refusals first: a service
changed since the last pull is refused before the job runs) and one sample row is scored to confirm.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.services import dumps_service, model_assets
from amlvc.errors import ConflictError, ValidationError
from amlvc.sync.datasets import same_name
from amlvc.sync.endpoints import patch_endpoint, patch_model
from amlvc.sync.remote import Target, open_remote
from amlvc.sync.runs import Poll
from amlvc.sync.scoring import ScoreResult, Spec, access, put_inputs, result_url, run_job, score
from amlvc.sync.servicemodels import ModelBook, model_name, storage
from amlvc.sync.servicepush import ServicePushResult, apply, plan_service, refuse
from amlvc.worktree import journal, lockfile, models, objects
from amlvc.worktree import services as files
from amlvc.worktree.models import ModelSource, ModelVersion

Progress = Callable[[str, int, int], None]
# Metrics an evaluation output may name, in the order the commit subject prefers them (Evaluate Model's columns).
METRICS = ("AUC", "Accuracy", "F1 Score", "Precision", "Recall", "Coefficient of Determination",
           "Root Mean Squared Error", "Mean Absolute Error")


@dataclass(frozen=True)
class RetrainResult:
    training: str
    into: str
    job: str
    model: str  # the new version, NAME@VERSION
    previous: str | None
    evaluation: dict[str, str] | None
    previous_evaluation: dict[str, str] | None
    commit: str | None
    pushed: ServicePushResult | None = None
    sample: ScoreResult | None = None

    @property
    def subject(self) -> str:
        return subject(self.model, self.previous_evaluation, self.evaluation)

    def to_json(self) -> dict[str, Any]:
        return {"training": self.training, "into": self.into, "job": self.job, "model": self.model,
                "previous": self.previous, "evaluation": self.evaluation,
                "previous_evaluation": self.previous_evaluation, "commit": self.commit, "subject": self.subject,
                "push": self.pushed.to_json() if self.pushed else None,
                "sample": self.sample.to_json() if self.sample else None}


@dataclass(frozen=True)
class Request:
    training: str
    into: Spec
    inputs: Sequence[tuple[str, Path]] = ()
    params: Mapping[str, str] | None = None
    resource: str | None = None  # the endpoint resource or ARM asset to retrain (when there are several)
    push: bool = False
    sample: Path | None = None
    remote: str | None = None
    token_env: str | None = None
    poll: Poll | None = None
    progress: Progress | None = None


def evaluation_of(data: bytes) -> dict[str, str] | None:
    """The first row of an evaluation output (CSV) by column, or None when it is not such a table."""
    rows = [r for r in csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"))) if r]
    if len(rows) < 2 or len(rows[0]) != len(rows[1]):
        return None
    return dict(zip(rows[0], rows[1], strict=True))


def subject(model: str, before: Mapping[str, str] | None, after: Mapping[str, str] | None) -> str:
    """`retrain: churn-model@5 (AUC 0.81 → 0.83)`: the first known metric both evaluations have as a number."""
    for metric in METRICS:
        found = {k.lower(): k for k in (after or {})}
        key = found.get(metric.lower())
        if key is None or not _number(after, key):
            continue
        old = next((v for k, v in (before or {}).items() if k.lower() == metric.lower() and _number(before, k)), None)
        return f"retrain: {model} ({metric} {old + ' → ' if old else ''}{(after or {})[key]})"
    return f"retrain: {model}"


def _number(values: Mapping[str, str] | None, key: str) -> bool:
    try:
        float((values or {})[key])
    except (KeyError, ValueError):
        return False
    return True


def _target(canon: Mapping[str, Any], into: Spec, resource: str | None) -> tuple[str | None, str]:
    """(the model version served now, the model's name) at the retraining target; refusals before any job."""
    if canon["$kind"] == "classic":
        if into.endpoint in (None, rules.DEFAULT_ENDPOINT):
            raise ValidationError(f"web service {into.service!r}: the default endpoint's trained model cannot be "
                                  "replaced; retrain into another endpoint (`amlvc endpoint add "
                                  f"{into.service} ep2`, then --into {into.service}/ep2); nothing was run")
        entry = canon["Endpoints"].get(into.endpoint)
        if entry is None:
            raise ValidationError(f"web service {into.service!r} has no endpoint {into.endpoint!r}; nothing was run")
        resources = entry.get("Resources") or {}
        chosen = resource or (next(iter(resources)) if len(resources) == 1 else None)
        if chosen is None or chosen not in resources:
            raise ValidationError(f"endpoint {into} has resources {', '.join(resources) or 'none'}: name the one to "
                                  "retrain with --resource; nothing was run")
        return resources[chosen], model_name(chosen)
    assets = model_assets(canon)
    chosen = resource or (next(iter(assets)) if len(assets) == 1 else None)
    if chosen is None or chosen not in assets:
        raise ValidationError(f"web service {into.service!r} has trained-model assets {', '.join(assets) or 'none'}: "
                              "name the one to retrain with --resource; nothing was run")
    current = assets[chosen].get(rules.MODEL_REF_KEY)
    return (str(current) if current else None), model_name(str(assets[chosen].get("name") or chosen))


def retrain(start: Path, request: Request) -> RetrainResult:
    root = repo.find_root(start)
    into = request.into
    canon = files.parsed(root, into.service)
    files.parsed(root, request.training)
    current, name = _target(canon, into, request.resource)
    book = ModelBook.load(root)
    if current is not None:
        name = book.resolve(current)[0].name
    known = models.find(book.manifests, name)
    files.refuse_dirty(root, {files.path(into.service): None, **({models.path(known.slug): None} if known else {})})
    target = open_remote(root, request.remote, token_env=request.token_env)
    with target.client, journal.operation_lock(root):
        if request.push:  # before the job: a stale service or a missing key would only be refused after it
            _refuse_early(root, target, book, into.service, canon)
        version, job, evaluation = _train(root, target, book, request, name)
        new_ref = book.add(name, version)
        change = (patch_endpoint(into.service, str(into.endpoint), new_ref, request.resource)
                  if canon["$kind"] == "classic" else patch_model(into.service, new_ref, request.resource))
        words = change(canon, book)
        before = book.resolve(current)[1].evaluation if current else None
        text = subject(new_ref, before, evaluation)
        message = _message(text, words, name, version, before, target)
        commit = files.write_and_commit(root, services={into.service: dumps_service(canon)},
                                        manifests=list(book.changed.values()), message=message)
        book.changed.clear()
        pushed = None
        if request.push:
            plan = plan_service(root, target, book, into.service, canon)
            store = refuse(root, target, book, [plan])
            lock_commit, operations = apply(root, target, book, [plan], store, poll=request.poll,
                                            progress=request.progress, subject=f"Push {text}")
            pushed = ServicePushResult(target.name, (plan,), False, lock_commit, operations)
    sample = _confirm(root, request) if request.push else None
    return RetrainResult(request.training, str(into), job, new_ref, current, evaluation, dict(before) if before else
                         None, commit, pushed, sample)


def _refuse_early(root: Path, target: Target, book: ModelBook, service: str, canon: Mapping[str, Any]) -> None:
    entry = files.entries(lockfile.load(root), target.name).get(service)
    if entry is not None:
        plan = plan_service(root, target, book, service, canon)
        if plan.stale:
            raise ConflictError(f"web service {service!r}: {plan.stale} (remote '{target.name}'); nothing was run. "
                                f"Run `amlvc webservice pull {service}`, review, then retrain")
    storage(root, target, service, f"pushing the retrained model of {service!r}")


def _train(root: Path, target: Target, book: ModelBook, request: Request,
           name: str) -> tuple[ModelVersion, str, dict[str, str] | None]:
    """Run the training service's job; the new model version (bytes stored), the job id and its evaluation."""
    client = target.client
    service = access(root, target, Spec.parse(request.training))
    refs = put_inputs(client, storage(root, target, request.training, "a training input"), request.inputs) \
        if request.inputs else {}
    body = {"Inputs": refs, "Outputs": {}, "GlobalParameters": dict(request.params or {})}
    job, status = run_job(client, service, body, poll=request.poll, progress=request.progress)
    results = {k: v for k, v in (status.get("Results") or {}).items() if isinstance(v, Mapping)}
    learners = [k for k, v in sorted(results.items()) if str(v.get("RelativeLocation", "")).lower().endswith(
        ".ilearner")]
    if not learners:
        raise ValidationError(f"training service {request.training!r} wrote no .ilearner output in job {job} "
                              f"(outputs: {', '.join(results) or 'none'}); deploy a training experiment whose "
                              "web-service output is its Train Model's trained model")
    data = client.download_blob(result_url(results[learners[0]], sas=True), what=f"output {learners[0]!r}")
    stored = objects.store(root, data)
    evaluation = None
    for output, result in sorted(results.items()):
        if output not in learners and str(result.get("RelativeLocation", "")).lower().endswith((".csv", ".tsv")):
            evaluation = evaluation_of(client.download_blob(result_url(result, sas=True), what=f"output {output!r}"))
            break
    item = same_name(client.list_trainedmodels(), name)
    latest = (item.get("ServiceVersion") or 0) + 1 if item else 0
    version = ModelVersion(book.next_version(name, latest), result_url(results[learners[0]], sas=False),
                           rules.TRAINED_MODEL_DATA_TYPE, stored.size, stored.sha256,
                           datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
                           f"retrained by {request.training} (output {learners[0]!r})",
                           ModelSource(job=job), evaluation)
    return version, job, evaluation


def _message(text: str, words: str, name: str, version: ModelVersion, before: Mapping[str, str] | None,
             target: Target) -> str:
    lines = [text, "", f"+ {models.line(name, version)}", f"~ {words}"]
    if version.evaluation:
        for key, value in version.evaluation.items():
            old = (before or {}).get(key)
            lines.append(f"  {key}: {old + ' → ' if old is not None and old != value else ''}{value}")
    lines += ["", f"Amlvc-Remote: {target.name}", f"Amlvc-Workspace: {target.workspace_id}"]
    return "\n".join(lines) + "\n"


def _confirm(root: Path, request: Request) -> ScoreResult:
    """Score one sample row on the retrained target: the first row of `--sample FILE`, else a row of the columns
    the service's swagger names."""
    return score(root, request.into, request.sample, remote=request.remote, token_env=request.token_env, rows=1)
