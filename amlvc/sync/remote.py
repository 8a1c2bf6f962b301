"""A workspace as the repository sees it: the remote opened with its token, and its experiments in canonical form."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amlvc import config, rules
from amlvc.canonical.checks import expect_dict
from amlvc.canonical.jsonio import loads
from amlvc.client import Client, hosts_for
from amlvc.credentials import resolve_token
from amlvc.errors import ApiError, InvalidDocument
from amlvc.worktree import experiments, lockfile

if TYPE_CHECKING:
    from amlvc.canonical.normalize import Normalized

Files = dict[str, bytes]


@dataclass(frozen=True)
class Target:
    """A remote, resolved: its name, workspace id and an open client."""

    name: str
    workspace_id: str
    client: Client


def open_remote(root: Path, remote: str | None, *, token_env: str | None = None, jobs: int = 8) -> Target:
    """The remote of amlvc.toml named `remote` (else the default one) with a client holding its token."""
    spec = config.load(root).remote(remote)
    creds = resolve_token(spec.name, workspace_id=spec.workspace_id, token_env=token_env,
                          remote_token_env=spec.token_env)
    hosts = hosts_for(location=spec.location, endpoint=spec.endpoint)
    client = Client(remote=spec.name, workspace_id=spec.workspace_id, hosts=hosts, token=creds.token,
                    token_source=creds.source, jobs=jobs)
    return Target(spec.name, spec.workspace_id, client)


def user_experiments(summaries: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """The workspace's own experiments: the list also carries Microsoft's samples (reference §2.2)."""
    mine = []
    for item in summaries:
        exp_id = item.get("ExperimentId")
        if not isinstance(exp_id, str) or exp_id.startswith(rules.BUILTIN_OWNER + "."):
            continue
        if item.get("Category") not in (None, "", "user"):
            continue
        mine.append(dict(item))
    return mine


def module_names(client: Client) -> dict[str, str]:
    """Module id -> human name from the workspace's module list (annotations in experiment.json)."""
    names: dict[str, str] = {}
    for module in client.list_modules():
        module_id, name = module.get("Id"), module.get("Name")
        if isinstance(module_id, str) and isinstance(name, str):
            names[module_id] = name
            parts = module_id.split(".")
            if len(parts) == 3:  # older batches of the same family keep their human name
                names.setdefault(parts[1], name)
    return names


# -- one experiment as the workspace has it, in canonical form -------------------------------------------------


@dataclass(frozen=True)
class Fetched:
    """One experiment as the workspace has it now, in canonical form."""

    slug: str
    name: str
    experiment_id: str
    etag: str
    run_id: str | None
    identity: dict[str, Any]
    files: dict[str, bytes]
    secrets: dict[str, str]
    hashed: str | None = field(default=None, repr=False, compare=False)  # the content hash, when known already

    @functools.cached_property
    def content_hash(self) -> str:
        return self.hashed or experiments.content_hash_of(self.files)


Normalizer = Callable[[Mapping[str, Any], str, Mapping[str, str]], "Normalized"]


def _normalize_here(doc: Mapping[str, Any], source: str, names: Mapping[str, str]) -> Normalized:
    from amlvc.canonical.normalize import normalize  # imported where used: a pull with nothing to fetch never is

    return normalize(doc, source=source, module_names=names)


def fetch_one(target: Target, slug: str, summary: Mapping[str, Any], names: Mapping[str, str],
              norm: Normalizer = _normalize_here) -> Fetched:
    """GET one experiment (plus its WSD when it is a predictive experiment) and normalize it."""
    exp_id = str(summary["ExperimentId"])
    return canonical(target, slug, get_document(target, exp_id), names, with_wsd=True, norm=norm)


def get_document(target: Target, exp_id: str, body: bytes | None = None) -> dict[str, Any]:
    """One experiment as the workspace answers it, read as strictly as `amlvc import` reads a file: bounded in
    size (while it streams in) and in nesting, no duplicate keys, no NaN; InvalidDocument (exit 6) otherwise.

    A body that does not parse is asked for once more first: a connection cut short reads as broken JSON.
    """
    source = f"{target.name}:{exp_id}"
    for attempt in range(2):
        if body is None:
            body = target.client.get_experiment_body(exp_id)
        try:
            doc = loads(body, source)
        except InvalidDocument:
            if attempt:
                raise
            body = None
            continue
        return expect_dict(doc, source, "")
    raise AssertionError("unreachable")


def canonical(target: Target, slug: str, doc: Mapping[str, Any], names: Mapping[str, str],
              *, with_wsd: bool, norm: Normalizer = _normalize_here) -> Fetched:
    """A GET document in canonical form, with the workspace's web-service definition when it has one."""
    exp_id = str(doc.get("ExperimentId"))
    normalized = norm(doc, f"{target.name}:{exp_id}", names)
    return assemble(target, slug, head(doc), normalized.files, normalized.identity, normalized.secrets,
                     with_wsd=with_wsd)


def head(doc: Mapping[str, Any]) -> dict[str, Any]:
    """The fields of a GET document that `_assemble` reads (all a worker process sends back of it)."""
    web = doc.get("WebService")
    predictive = isinstance(web, Mapping) and web.get("IsWebServiceExperiment") is True
    return {"ExperimentId": doc.get("ExperimentId"), "Description": doc.get("Description"),
            "Etag": doc.get("Etag"), "RunId": doc.get("RunId"), "predictive": predictive}


def assemble(target: Target, slug: str, doc: Mapping[str, Any], canonical_files: Mapping[str, bytes],
              identity: Mapping[str, Any], found_secrets: Mapping[str, str], *, with_wsd: bool,
              hashed: str | None = None) -> Fetched:
    """The `Fetched` of a normalized document (`hashed`: the content hash of `canonical_files`, if known)."""
    exp_id = str(doc.get("ExperimentId"))
    files = dict(canonical_files)
    secrets = dict(found_secrets)
    if with_wsd and doc.get("predictive") is True:
        wsd = _fetch_wsd(target, exp_id)
        if wsd is not None:
            files.update(wsd.files)
            secrets.update(wsd.secrets)
            hashed = None
    etag = doc.get("Etag")
    run_id = doc.get("RunId")
    return Fetched(slug=slug, name=str(doc.get("Description") or slug), experiment_id=exp_id,
                   etag=etag if isinstance(etag, str) else "", run_id=run_id if isinstance(run_id, str) else None,
                   identity=dict(identity), files=files, secrets=secrets, hashed=hashed)


def _fetch_wsd(target: Target, exp_id: str) -> Normalized | None:
    from amlvc.canonical.webservice import normalize_wsd

    try:
        doc = target.client.get_webservice_definition(exp_id)
    except ApiError as exc:
        # The service only exports a definition of a predictive experiment that has run (reference §2.2).
        if exc.status is not None and 400 <= exc.status < 500:
            return None
        raise
    return normalize_wsd(doc, source=f"{target.name}:{exp_id}/webservicedefinition")


def workspace_files(root: Path, remote: str, slugs: Sequence[str] = ()) -> dict[str, Files]:
    """The live workspace's experiments in canonical form: slug (from amlvc.lock, else the name) -> files."""
    target = open_remote(root, remote)
    with target.client:
        entries = lockfile.entries(lockfile.load(root), target.name)
        known = {str(entry.get("id")): slug for slug, entry in entries.items()}
        summaries = user_experiments(target.client.list_experiments())
        names = module_names(target.client) if summaries else {}
        out: dict[str, Files] = {}
        for summary in summaries:
            exp_id = str(summary.get("ExperimentId"))
            slug = known.get(exp_id) or experiments.slugify(str(summary.get("Description") or exp_id))
            if slugs and slug not in slugs:
                continue
            out[slug] = dict(fetch_one(target, slug, summary, names).files)
        return out
