"""`amlvc release PLAN.toml [--resume]`: the ALM article's steps as one declarative, resumable plan.

Steps, each beside the PowerShell cmdlet it replaces: upload the dataset (Upload-AmlUserDataSetFromFile), copy the
training experiment (Copy-AmlExperiment), bump its dataset (Update-AmlExperimentUserAsset), run it
(Start-AmlExperiment), promote its model (Promote-AmlTrainedModel), copy the predictive experiment, bump its model
(Replace-AmlExperimentUserAsset), run it, deploy it (New-AmlWebService), add / patch an endpoint
(Add-AmlWebServiceEndpoint, Patch-AmlWebServiceEndpoint) and score a sample (Invoke-AmlWebServiceRRSEndpoint).
Each step is idempotent (it looks for its effect first: a dataset version with the file's bytes, a copy of that
name, a model promoted from that run, a deployed service), commits its effect through the command it stands for,
and records its state in `.amlvc/release/`. After a failure or a kill, `--resume` continues at the step that did
not finish.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import config, repo
from amlvc.errors import AmlvcError, ValidationError
from amlvc.sync import assets, datasets, endpoints, promote, push, runs, scoring, servicepush
from amlvc.sync import models as model_sync
from amlvc.sync import pull as pull_sync
from amlvc.sync.pushplan import PushOptions
from amlvc.sync.releaseplan import Plan, Progress, load_plan, open_progress
from amlvc.sync.remote import open_remote, user_experiments
from amlvc.sync.servicemodels import ModelBook
from amlvc.sync.versions import VersionInfo, version_of
from amlvc.worktree import experiments, journal, lockfile
from amlvc.worktree import services as files

Say = Callable[[str], None]


@dataclass
class Context:
    root: Path
    plan: Plan
    progress: Progress
    remote: str
    token_env: str | None
    poll: runs.Poll | None

    @property
    def values(self) -> dict[str, Any]:
        return self.progress.values

    def options(self, **extra: Any) -> dict[str, Any]:
        return {"remote": self.remote, "token_env": self.token_env, **extra}


@dataclass(frozen=True)
class StepReport:
    id: str
    title: str
    cmdlet: str
    state: str  # done | already done | failed | pending
    result: dict[str, Any]
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return {"step": self.id, "title": self.title, "replaces": self.cmdlet, "state": self.state,
                "result": self.result, "seconds": round(self.seconds, 3)}


@dataclass(frozen=True)
class ReleaseResult:
    plan: str
    remote: str
    progress: str
    steps: tuple[StepReport, ...]
    error: str | None = None
    failure: AmlvcError | None = field(default=None, compare=False, repr=False)  # the caller raises it

    def to_json(self) -> dict[str, Any]:
        return {"plan": self.plan, "remote": self.remote, "progress": self.progress, "error": self.error,
                "steps": [s.to_json() for s in self.steps]}


# -- the steps ------------------------------------------------------------------------------------------------


def _upload(ctx: Context) -> dict[str, Any]:
    """The dataset file as a new version of its dataset, unless the latest version already holds its bytes."""
    file, name = ctx.plan.file("dataset", "file"), ctx.plan.value("dataset", "name")
    assert file is not None
    try:
        digest = hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError as exc:
        raise ValidationError(f"dataset.file {file}: cannot read ({exc.strerror}); nothing was uploaded") from None
    target = open_remote(ctx.root, ctx.remote, token_env=ctx.token_env)
    with target.client as client:
        latest = datasets.same_name(client.list_datasources(), name)
        location = (latest or {}).get("DownloadLocation")
        if latest is not None and isinstance(location, dict) and location.get("BaseUri"):
            held = client.download_blob(model_sync.endpoint_url(location), what=f"dataset {name!r}")
            if hashlib.sha256(held).hexdigest() == digest:
                info = VersionInfo.of("dataset", latest)
                ctx.values["dataset_version"] = info.version
                return {"dataset": name, "version": info.version, "id": info.id, "uploaded": False}
    result = datasets.upload(ctx.root, file, name=name, data_type=ctx.plan.get("dataset", "format"),
                             description=ctx.plan.get("dataset", "description") or "", **ctx.options())
    assert result.info is not None
    ctx.values["dataset_version"] = result.info.version
    return {"dataset": name, "version": result.info.version, "id": result.info.id, "uploaded": True}


def _copy(table: str) -> Callable[[Context], dict[str, Any]]:
    def step(ctx: Context) -> dict[str, Any]:
        """Copy-AmlExperiment: the experiment pushed as a new one, or the copy of that name the workspace has."""
        source, name = ctx.plan.value(table, "experiment"), ctx.plan.value(table, "copy")
        target = open_remote(ctx.root, ctx.remote, token_env=ctx.token_env)
        with target.client as client:
            named = [e for e in user_experiments(client.list_experiments()) if e.get("Description") == name]
        if named:  # made before (a release cut off after the copy): take it into the repository
            exp_id = str(named[0]["ExperimentId"])
            if lockfile.load(ctx.root).slug_of(target.name, exp_id) is None:
                pull_sync.pull(ctx.root, [exp_id], **ctx.options())
            copied = False
        else:
            result = push.push(ctx.root, PushOptions(experiments=(source,), as_new=name, **ctx.options()))
            exp_id = result.pushed[0].experiment_id
            copied = True
        slug = lockfile.load(ctx.root).slug_of(target.name, exp_id)
        ctx.values[f"{table}_slug"], ctx.values[f"{table}_id"] = slug, exp_id
        return {"from": source, "experiment": slug, "id": exp_id, "copied": copied}
    return step


def _bump(table: str, kind: str) -> Callable[[Context], dict[str, Any]]:
    def step(ctx: Context) -> dict[str, Any]:
        """Update-AmlExperimentUserAsset: the copy's reference moved to the version made before, committed, pushed."""
        slug = str(ctx.values[f"{table}_slug"])
        pin = (f"{ctx.plan.value('dataset', 'name')}@{ctx.values['dataset_version']}" if kind == "dataset" else
               f"{ctx.plan.value('training', 'model')}@{ctx.values['model_version']}")
        moved = assets.bump(ctx.root, [slug], kinds=[kind], to=[pin], **ctx.options())
        with journal.operation_lock(ctx.root):
            commit = repo.commit_paths(ctx.root, [experiments.path(slug)], f"release: bump {slug} to {pin}\n")
        pushed = push.push(ctx.root, PushOptions(experiments=(slug,), **ctx.options()))
        return {"experiment": slug, "to": pin, "moved": [c.to_json() for c in moved.changes], "commit": commit,
                "pushed": pushed.commit}
    return step


def _run(table: str) -> Callable[[Context], dict[str, Any]]:
    def step(ctx: Context) -> dict[str, Any]:
        """Start-AmlExperiment, polled to Finished (exit 7 naming failed nodes otherwise)."""
        result = runs.run(ctx.root, str(ctx.values[f"{table}_slug"]), wait_=True, poll=ctx.poll, **ctx.options())
        runs.raise_for_failures([result])
        return {"experiment": result.experiment.slug, "status": result.state.status, "run_id": result.state.run_id,
                "commit": result.commit}
    return step


def _promote(ctx: Context) -> dict[str, Any]:
    """Promote-AmlTrainedModel from the copy's run; a version already promoted from that copy is taken instead."""
    slug, exp_id = str(ctx.values["training_slug"]), str(ctx.values["training_id"])
    name, node = ctx.plan.value("training", "model"), ctx.plan.value("training", "node")
    target = open_remote(ctx.root, ctx.remote, token_env=ctx.token_env)
    with target.client as client:
        latest = datasets.same_name(client.list_trainedmodels(), name)
    if "model_before" not in ctx.values:
        ctx.values["model_before"] = version_of(latest) if latest else 0
        ctx.progress.save()  # before the promotion: a kill after it must not promote a second version
    current = version_of(latest) if latest else 0
    if latest is not None and (current or 0) > ctx.values["model_before"] and \
            str(latest.get("PromotedFrom") or "").startswith(exp_id):
        model_sync.pull(ctx.root, [f"{name}@{current}"], **ctx.options())
        ctx.values["model_version"] = current
        return {"model": name, "version": current, "promoted": False}
    result = promote.promote(ctx.root, slug, node, name=name, output=ctx.plan.get("training", "output"),
                             **ctx.options())
    assert result.pulled is not None
    ctx.values["model_version"] = result.pulled.version.version
    return {"model": name, "version": result.pulled.version.version, "promoted": True, "commit": result.commit}


def _deploy(ctx: Context) -> dict[str, Any]:
    """New-AmlWebService from the predictive copy; a service it already has is recorded instead."""
    name, slug = ctx.plan.value("service", "name"), str(ctx.values["predictive_slug"])
    entry = files.entries(lockfile.load(ctx.root), ctx.remote).get(name)
    if entry is not None:
        return {"service": name, "id": entry.get("id"), "deployed": False}
    target = open_remote(ctx.root, ctx.remote, token_env=ctx.token_env)
    with target.client as client:
        doc = client.get_experiment(str(ctx.values["predictive_id"]))
    group = (doc.get("WebService") or {}).get("WebServiceGroupId")
    if group:
        recorded = endpoints.adopt(ctx.root, name, str(group), **ctx.options())
    else:
        recorded = endpoints.deploy(ctx.root, slug, name=name, options=endpoints.Options(**ctx.options(
            poll=ctx.poll)))
    return {"service": name, "id": recorded.service_id, "deployed": recorded.action == "deploy",
            "commit": recorded.commit}


def _endpoint(ctx: Context) -> dict[str, Any]:
    """Add-AmlWebServiceEndpoint (and Patch-AmlWebServiceEndpoint with service.model), pushed."""
    service, endpoint = ctx.plan.value("service", "name"), ctx.plan.get("service", "endpoint")
    if endpoint is None:
        return {"skipped": "no service.endpoint in the plan"}
    options = endpoints.Options(push=True, poll=ctx.poll, **ctx.options())
    done = []
    canon = files.parsed(ctx.root, service)
    if endpoint not in canon["Endpoints"]:
        endpoints.edit(ctx.root, service, endpoints.add_endpoint(
            service, endpoint, description=ctx.plan.get("service", "description") or ""), options)
        done.append("added")
    model = ctx.plan.get("service", "model")
    if model is not None:
        canon = files.parsed(ctx.root, service)
        served = set(canon["Endpoints"][endpoint].get("Resources", {}).values())
        if served != {ModelBook.load(ctx.root).canonical(model)}:
            endpoints.edit(ctx.root, service, endpoints.patch_endpoint(service, endpoint, model), options)
            done.append(f"patched to {model}")
    pushed = servicepush.push(ctx.root, [service], **ctx.options())  # after a cut-off edit: its push
    return {"service": service, "endpoint": endpoint, "done": done, "pushed": pushed.commit}


def _score(ctx: Context) -> dict[str, Any]:
    """Invoke-AmlWebServiceRRSEndpoint on the endpoint with the plan's sample."""
    service, endpoint = ctx.plan.value("service", "name"), ctx.plan.get("service", "endpoint")
    sample = ctx.plan.file("service", "sample")
    if sample is None:
        return {"skipped": "no service.sample in the plan"}
    result = scoring.score(ctx.root, scoring.Spec(service, endpoint), sample, **ctx.options())
    return result.to_json()


STEPS: tuple[tuple[str, str, str, Callable[[Context], dict[str, Any]]], ...] = (
    ("upload-dataset", "upload the dataset", "Upload-AmlUserDataSetFromFile", _upload),
    ("copy-training", "copy the training experiment", "Copy-AmlExperiment", _copy("training")),
    ("bump-training", "bump its dataset", "Update-AmlExperimentUserAsset", _bump("training", "dataset")),
    ("run-training", "run it", "Start-AmlExperiment", _run("training")),
    ("promote-model", "promote the model", "Promote-AmlTrainedModel", _promote),
    ("copy-predictive", "copy the predictive experiment", "Copy-AmlExperiment", _copy("predictive")),
    ("bump-predictive", "bump its model", "Replace-AmlExperimentUserAsset", _bump("predictive", "trainedmodel")),
    ("run-predictive", "run it", "Start-AmlExperiment", _run("predictive")),
    ("deploy", "deploy it as a web service", "New-AmlWebService", _deploy),
    ("endpoint", "add / patch an endpoint", "Add-AmlWebServiceEndpoint, Patch-AmlWebServiceEndpoint", _endpoint),
    ("score", "score a sample", "Invoke-AmlWebServiceRRSEndpoint", _score),
)


def release(start: Path, plan_path: Path, *, resume: bool = False, dry_run: bool = False,
            remote: str | None = None, token_env: str | None = None, poll: runs.Poll | None = None,
            say: Say | None = None) -> ReleaseResult:
    """Run the plan's steps in order, skipping those already done; the first failure stops it (its error is in the
    result, for the caller to report and raise)."""
    root = repo.find_root(start)
    plan = load_plan(plan_path)
    chosen = config.load(root).remote(remote or plan.remote).name
    progress = open_progress(root, plan, chosen, resume=resume)
    ctx = Context(root, plan, progress, chosen, token_env, poll)
    reports: list[StepReport] = []
    rel = progress.path.relative_to(root).as_posix()
    for number, (step, title, cmdlet, run) in enumerate(STEPS, start=1):
        if dry_run or progress.state(step) == "done":
            state = "pending" if dry_run and progress.state(step) != "done" else "already done"
            reports.append(StepReport(step, title, cmdlet, state, progress.steps.get(step, {}).get("result") or {}))
            continue
        if say is not None:
            say(f"[{number}/{len(STEPS)}] {title} ({cmdlet})")
        began = time.monotonic()
        progress.mark(step, "running")
        try:
            result = run(ctx)
        except AmlvcError as exc:
            progress.mark(step, "failed", error=exc.message)
            reports.append(StepReport(step, title, cmdlet, "failed", {"error": exc.message},
                                      time.monotonic() - began))
            reports += [StepReport(s, t, c, "pending", {}) for s, t, c, _ in STEPS[number:]]
            return ReleaseResult(str(plan_path), chosen, rel, tuple(reports), exc.message, exc)
        progress.mark(step, "done", result=result)
        reports.append(StepReport(step, title, cmdlet, "done", result, time.monotonic() - began))
    return ReleaseResult(str(plan_path), chosen, rel, tuple(reports))
