"""`amlvc model promote`: a node's trained-model output of the latest finished run becomes a model version
(`Promote-AmlTrainedModel`), whose bytes are then fetched, stored and committed as `model pull` does."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.client import Client
from amlvc.errors import AmlvcError, ValidationError, some
from amlvc.sync.datasets import same_name
from amlvc.sync.models import (
    Pulled,
    commit_versions,
    experiment_slugs,
    fetch_bytes,
    make_version,
    output_endpoint,
    run_of,
)
from amlvc.sync.remote import module_names, open_remote
from amlvc.sync.runs import Located, finished, module_name
from amlvc.sync.versions import VersionInfo, iso_time
from amlvc.worktree import catalog, models, objects

MODEL_DATA_TYPE = "iLearnerDotNet"  # what PS posts (reference §2.3: compared case-insensitively)


@dataclass(frozen=True)
class PromotePlan:
    """What a promotion does: which output of which run becomes which version of which model."""

    remote: str
    experiment: Located
    node: str
    module: str
    port: str
    run_id: str | None
    run_time: str | None
    name: str
    family: str | None  # None: a new model
    version: int

    def to_json(self) -> dict[str, Any]:
        return {"remote": self.remote, "experiment": self.experiment.slug, "experiment_id":
                self.experiment.experiment_id, "node": self.node, "module": self.module, "output": self.port,
                "run_id": self.run_id, "run_time": self.run_time, "name": self.name, "family": self.family,
                "version": self.version, "new_model": self.family is None}


@dataclass(frozen=True)
class PromoteResult:
    plan: PromotePlan
    pulled: Pulled | None  # None on --dry-run
    commit: str | None

    def to_json(self) -> dict[str, Any]:
        return {**self.plan.to_json(), "dry_run": self.pulled is None, "commit": self.commit,
                "model": self.pulled.to_json() if self.pulled else None}


def is_model_port(port: Mapping[str, Any]) -> bool:
    return (str(port.get("Name") or "").strip().lower() in rules.MODEL_OUTPUT_PORTS
            or port.get("OutputType") == rules.MODEL_OUTPUT_TYPE)


def _model_ports(node: Mapping[str, Any]) -> list[str]:
    return [str(p.get("Name")) for p in node.get("OutputPortsInternal") or [] if isinstance(p, Mapping)
            and is_model_port(p)]


def find_node(doc: Mapping[str, Any], wanted: str, names: Mapping[str, str], exp: str) -> Mapping[str, Any]:
    """NODE as a node id, or as a module name that one node (with a model output) has; ValidationError otherwise."""
    nodes = [n for n in (doc.get("Graph") or {}).get("ModuleNodes") or [] if isinstance(n, Mapping)]
    exact = [n for n in nodes if n.get("Id") == wanted]
    named = exact or [n for n in nodes if module_name(n, names).strip().lower() == wanted.strip().lower()]
    if len(named) > 1:
        named = [n for n in named if _model_ports(n)] or named
    if len(named) == 1:
        return named[0]
    trainers = [f"{n.get('Id')} ({module_name(n, names)})" for n in nodes if _model_ports(n)]
    what = f"{len(named)} nodes are" if named else "no node is"
    raise ValidationError(f"{what} {wanted!r} in experiment '{exp}'; nothing was promoted. Name the node by id; "
                          f"nodes with a trained-model output: {some(trainers) or 'none'}")


def _port(node: Mapping[str, Any], output: str | None, label: str) -> str:
    ports = [str(p.get("Name")) for p in node.get("OutputPortsInternal") or [] if isinstance(p, Mapping)]
    model_ports = _model_ports(node)
    if output is not None and output in model_ports:
        return output
    if output is None and len(model_ports) == 1:
        return model_ports[0]
    raise ValidationError(
        f"node {label} has no trained-model output{f' {output!r}' if output else ''} (its outputs: "
        f"{some(ports) or 'none'}); nothing was promoted. Promote the 'Trained model' output of a Train Model node")


def _plan(root: Path, client: Client, remote: str, exp: str, node_arg: str, output: str | None, name: str,
          ) -> tuple[PromotePlan, dict[str, Any], dict[str, Any]]:
    """The plan, the experiment's GET document and the output's endpoint; refusals before anything is written."""
    located, doc = finished(root, client, remote, exp, "nothing was promoted")
    label = located.slug or located.name
    names = module_names(client)
    node = find_node(doc, node_arg, names, label)
    node_id, module = str(node.get("Id")), module_name(node, names)
    port = _port(node, output, f"{node_id} ({module})")
    endpoint = output_endpoint(doc, node_id, port)
    if endpoint is None:
        raise ValidationError(f"the latest run of '{label}' has no output {port!r} of node {node_id} ({module}); "
                              f"nothing was promoted. Run it first: `amlvc run {label} --wait`")
    existing = same_name([m for m in client.list_trainedmodels()], name)
    family = str(existing["FamilyId"]).lower() if existing and existing.get("FamilyId") else None
    current = VersionInfo.of("trainedmodel", existing) if existing else None
    run_id, run_time = run_of(doc)
    plan = PromotePlan(remote, located, node_id, module, port, run_id, run_time, name, family,
                       (current.version or 0) + 1 if current else 1)
    return plan, doc, endpoint


def promote(start: Path, exp: str, node: str, *, name: str, output: str | None = None, description: str = "",
            remote: str | None = None, token_env: str | None = None, dry_run: bool = False) -> PromoteResult:
    """Promote NODE's trained-model output of EXP's latest finished run, then store and commit its bytes."""
    root = repo.find_root(start)
    if not name.strip():
        raise ValidationError("--name must not be empty; nothing was promoted")
    manifests = models.load_all(root)
    target = open_remote(root, remote, token_env=token_env)
    with target.client as client:
        plan, doc, _ = _plan(root, client, target.name, exp, node, output, name)
        slug = models.slug_for(manifests, name, plan.family or "")
        models.refuse_dirty(root, [slug])
        if dry_run:
            return PromoteResult(plan, None, None)
        body = {"ExperimentId": plan.experiment.experiment_id, "ModuleNodeId": plan.node, "OutputName": plan.port,
                "TrainedModel": {"Name": name, "DataTypeId": MODEL_DATA_TYPE, "Description": description,
                                 "SourceOrigin": "FromOutputPromotion", "FamilyId": plan.family}}
        new_id = client.create_asset("trainedmodels", body)
        try:
            item = client.get_asset("trainedmodels", new_id)
            data, source = fetch_bytes(client, item, experiment_slugs(root, target.name), leaf=doc)
        except AmlvcError as exc:
            raise _after_promotion(exc, new_id, name, target.name) from None
    version = make_version(item, data, source)
    objects.store(root, data)
    slug = models.slug_for(manifests, name, str(item.get("FamilyId") or "").lower())
    pulled = Pulled(slug, name, version, True)
    subject = f"Promote {plan.experiment.slug or plan.experiment.name} {plan.module} to model {name}@{version.version}"
    commit = commit_versions(root, target.name, target.workspace_id, subject, [pulled], manifests)
    catalog.note(root, [catalog.Known(version.id, "trainedmodel", name, version.version, iso_time(
        item.get("CreatedDate")))])
    return PromoteResult(plan, pulled, commit)


def _after_promotion(exc: AmlvcError, new_id: str, name: str, remote: str) -> AmlvcError:
    """The error of a promotion that happened but whose bytes could not be fetched, with the way to finish it."""
    err = AmlvcError(f"promoted {name!r} as {new_id} in workspace '{remote}', but could not fetch its bytes: "
                     f"{exc.message}. Run `amlvc model pull '{name}' --remote {remote}` to finish")
    err.exit_code = exc.exit_code
    return err
