"""`amlvc score` (Request-Response) and `amlvc batch` (Batch Execution) against a service of webservices/.

A classic service is reached through one of its endpoints (`SERVICE/ENDPOINT`, the default endpoint without
one): its `ApiLocation` and primary key, read from the workspace at the time of the call (never stored). An ARM
service through the routes beside its `swaggerLocation` and the key of `listKeys`. Batch inputs are put into the
remote's storage account by content (`amlvc-batch/<sha256>.<ext>`) and named to the job with a connection string,
as the retraining articles do; outputs are downloaded through the SAS of the job's results.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from amlvc import repo, rules
from amlvc.canonical.jsonio import loads
from amlvc.client import webservices as api
from amlvc.errors import ApiError, LocalError, RunFailed, UsageError, ValidationError
from amlvc.sync.remote import Target, open_remote
from amlvc.sync.runs import Poll
from amlvc.sync.servicemodels import Storage, storage
from amlvc.sync.webservices import arm_for
from amlvc.worktree import lockfile, objects
from amlvc.worktree import services as files

Progress = Callable[[str, int, int], None]


@dataclass(frozen=True)
class Spec:
    """SERVICE[/ENDPOINT] of the command line."""

    service: str
    endpoint: str | None

    @classmethod
    def parse(cls, text: str) -> Spec:
        service, _, endpoint = text.partition("/")
        return cls(service, endpoint or None)

    def __str__(self) -> str:
        return f"{self.service}/{self.endpoint}" if self.endpoint else self.service


def access(root: Path, target: Target, spec: Spec) -> api.ServiceAccess:
    """Where the service's BES and RRS routes are and its primary key (read now from the workspace)."""
    entry = files.entries(lockfile.load(root), target.name).get(spec.service)
    if entry is None:
        raise UsageError(f"web service {spec.service!r} is not recorded for remote '{target.name}' in "
                         f"{rules.LOCK_FILE}; `amlvc webservice pull` or `deploy` it first")
    if entry.get("kind") == "classic":
        endpoint = api.get_endpoint(target.client, str(entry["id"]), spec.endpoint or rules.DEFAULT_ENDPOINT)
        return api.ServiceAccess(str(endpoint["ApiLocation"]), str(endpoint["PrimaryKey"]),
                                 f"endpoint {spec.service}/{spec.endpoint or rules.DEFAULT_ENDPOINT}")
    if spec.endpoint:
        raise UsageError(f"web service {spec.service!r} is an ARM service: it has no endpoints; score SERVICE")
    arm = arm_for(root, target, required=True)
    assert arm is not None
    doc = arm.get(str(entry["resource"]))
    if doc is None:
        raise ValidationError(f"ARM web service {entry['resource']!r} no longer exists in remote '{target.name}'")
    location = str((doc.get("properties") or {}).get("swaggerLocation") or "")
    return api.ServiceAccess(location.rsplit("/swagger.json", 1)[0], str(arm.keys(str(entry["resource"]))["primary"]),
                             f"web service {spec.service}")


# -- RRS --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ScoreResult:
    service: str
    results: dict[str, Any]  # output name -> {"ColumnNames", "ColumnTypes", "Values"}

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "results": self.results}


def read_table(path: Path) -> dict[str, Any]:
    """A CSV file (header, then rows) or a JSON file (`{ColumnNames, Values}` or a list of row objects) as an RRS
    input table; a JSON `{"Inputs": …}` is taken as the whole request."""
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise LocalError(f"{path}: cannot read ({exc.strerror})") from None
    if path.suffix.lower() == ".json":
        doc = loads(data, str(path))
        if isinstance(doc, list) and doc and all(isinstance(row, dict) for row in doc):
            columns = list(doc[0])
            return {"ColumnNames": columns, "Values": [[row.get(c) for c in columns] for row in doc]}
        if isinstance(doc, dict):
            return doc
        raise ValidationError(f"{path}: expected {{ColumnNames, Values}}, a list of row objects or {{Inputs: …}}")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8-sig", errors="replace"))))
    if not rows:
        raise ValidationError(f"{path}: empty; give a header line and at least one row")
    return {"ColumnNames": rows[0], "Values": [r for r in rows[1:] if r]}


def service_inputs(client: Any, service: api.ServiceAccess) -> dict[str, list[str]]:
    """The service's inputs and, where its swagger names them, their columns (`input1` when it says nothing)."""
    try:
        doc = api.swagger(client, service)
    except ApiError:
        return {"input1": []}
    inputs = ((doc.get("definitions") or {}).get("ExecutionRequest") or {}).get("properties", {}).get("Inputs", {})
    found = {name: list(((spec.get("properties") or {}).get("ColumnNames") or {}).get("example") or [])
             for name, spec in (inputs.get("properties") or {}).items() if isinstance(spec, dict)}
    return found or {"input1": []}


def score(start: Path, spec: Spec, table: Path | None, *, input_name: str | None = None,
          params: Mapping[str, str] | None = None, remote: str | None = None, token_env: str | None = None,
          rows: int | None = None) -> ScoreResult:
    """Invoke-AmlWebServiceRRSEndpoint: score the rows of `table` (the first `rows` of them); without a table, one
    row of empty values in the columns the service's swagger names."""
    root = repo.find_root(start)
    given = read_table(table) if table is not None else None
    target = open_remote(root, remote, token_env=token_env)
    with target.client as client:
        service = access(root, target, spec)
        if given is not None and ("Inputs" in given or "inputs" in given):
            body = given
        else:
            inputs = service_inputs(client, service)
            name = input_name or next(iter(inputs))
            if given is None:
                given = {"ColumnNames": inputs.get(name, []), "Values": [["" for _ in inputs.get(name, [])]]}
            if rows is not None:
                given = {**given, "Values": list(given.get("Values") or [])[:rows]}
            body = {"Inputs": {name: given}, "GlobalParameters": dict(params or {})}
        answer = api.execute(client, service, body)
    results = answer.get("Results") or {}
    return ScoreResult(str(spec), {name: (value.get("value") if isinstance(value, dict) and "value" in value
                                          else value) for name, value in results.items()})


# -- BES --------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BatchResult:
    service: str
    job: str
    status: str
    details: str | None = None
    outputs: dict[str, str] = field(default_factory=dict)  # output name -> the file written
    results: dict[str, str] = field(default_factory=dict)  # output name -> its blob (no SAS)

    def to_json(self) -> dict[str, Any]:
        return {"service": self.service, "job": self.job, "status": self.status, "details": self.details,
                "outputs": self.outputs, "results": self.results}


def put_inputs(client: Any, store: Storage, inputs: Sequence[tuple[str, Path]]) -> dict[str, Any]:
    """Each input file put into storage by content; the job's `Inputs` (connection string + relative location)."""
    refs = {}
    for name, path in inputs:
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise LocalError(f"{path}: cannot read ({exc.strerror})") from None
        sha, _ = objects.digest([data])
        blob = f"{rules.BATCH_CONTAINER}/{sha}{path.suffix.lower() or '.csv'}"
        api.upload_blob(client, store.account, blob, data, store.key, what=f"batch input {name}")
        refs[name] = {"ConnectionString": store.connection_string(), "RelativeLocation": blob}
    return refs


def run_job(client: Any, service: api.ServiceAccess, body: dict[str, Any], *, wait: bool = True,
            poll: Poll | None = None, progress: Progress | None = None) -> tuple[str, dict[str, Any]]:
    """Submit, start and (with `wait`) poll a job until it ends; RunFailed (7) with its Details when it fails."""
    poll = poll or Poll()
    job = api.submit_job(client, service, body)
    api.start_job(client, service, job)
    if not wait:
        return job, {"StatusCode": "Running"}
    started, delay, polls = poll.clock(), 0.2, 0
    while True:
        status = api.job_status(client, service, job)
        state = str(status.get("StatusCode"))
        polls += 1
        if progress is not None:
            progress(f"Batch job {job[:8]}", polls, polls + (0 if state in rules.BES_FINAL_STATES else 1))
        if state in rules.BES_FINAL_STATES:
            break
        if poll.clock() - started >= poll.timeout:
            raise ApiError(f"batch job {job} of {service.what} is still {state} after {poll.timeout:g} s; it goes "
                           "on in the workspace")
        poll.sleep(delay)
        delay = min(delay * 1.5, 5.0)
    if state in rules.BES_FAILED_STATES:
        raise RunFailed(f"batch job {job} of {service.what} ended {state}: {status.get('Details') or 'no details'}; "
                        "nothing was recorded")
    return job, status


def result_url(result: Mapping[str, Any], *, sas: bool) -> str:
    url = str(result.get("BaseLocation") or "").rstrip("/") + "/" + str(result.get("RelativeLocation") or "")
    return url + (str(result.get("SasBlobToken") or "") if sas else "")


def batch(start: Path, spec: Spec, inputs: Sequence[tuple[str, Path]], outputs: Sequence[tuple[str, Path]],
          params: Mapping[str, str], *, wait: bool = True, remote: str | None = None, token_env: str | None = None,
          poll: Poll | None = None, progress: Progress | None = None) -> BatchResult:
    """Invoke-AmlWebServiceBESEndpoint: put the inputs into storage, submit, start, poll, download the outputs."""
    root = repo.find_root(start)
    if outputs and not wait:
        raise UsageError("--output needs --wait (the outputs exist once the job has finished)")
    target = open_remote(root, remote, token_env=token_env)
    with target.client as client:
        service = access(root, target, spec)
        refs = put_inputs(client, storage(root, target, spec.service, "a batch input"), inputs) if inputs else {}
        body = {"Inputs": refs, "Outputs": {}, "GlobalParameters": dict(params)}
        job, status = run_job(client, service, body, wait=wait, poll=poll, progress=progress)
        results = status.get("Results") or {}
        written = {}
        for name, path in outputs:
            if name not in results:
                raise ValidationError(f"batch job {job} has no output {name!r} (outputs: {', '.join(results)})")
            path.write_bytes(client.download_blob(result_url(results[name], sas=True), what=f"output {name}"))
            written[name] = str(path)
    return BatchResult(str(spec), job, str(status.get("StatusCode")), status.get("Details"), written,
                       {name: result_url(r, sas=False) for name, r in results.items() if isinstance(r, Mapping)})


def table_text(table: Mapping[str, Any]) -> str:
    """An output table as CSV text."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(table.get("ColumnNames") or [])
    writer.writerows(table.get("Values") or [])
    return out.getvalue()
