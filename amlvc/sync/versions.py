"""Versions of workspace assets: one version's item by id, version numbers and dates, and finding NAME@VERSION.

Lists show only the latest version of each family (reference §5.2); an older version is found by id
(`GET {collection}/{id}`): from the ids the repository knows, else by walking the family's batches down
from the latest one (batches grow with versions, reference §5.4).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from amlvc.client import Client
from amlvc.errors import ApiError
from amlvc.sync.check import ResourceId
from amlvc.worktree.catalog import Known

# The Studio API collection of each asset kind (reference §2.3-§2.5).
COLLECTIONS: Mapping[str, str] = {"dataset": "datasources", "trainedmodel": "trainedmodels",
                                  "transform": "transformmodules", "module": "modules"}
MAX_PROBES = 1000  # GETs spent walking a family's batches before giving up
_DATE = re.compile(r"/Date\((-?\d+)\)/")


def iso_time(value: Any) -> str | None:
    """`/Date(ms)/` (reference §1.4) as ISO 8601 UTC ("2017-07-03T10:11:12Z"); None when unset or unreadable."""
    match = _DATE.search(value) if isinstance(value, str) else None
    if match is None or int(match.group(1)) < 0:
        return None
    return datetime.fromtimestamp(int(match.group(1)) / 1000, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def version_of(item: Mapping[str, Any]) -> int | None:
    """The 1-based version of an asset item (ServiceVersion counts from 0)."""
    value = item.get("ServiceVersion")
    return value + 1 if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True)
class VersionInfo:
    """One asset version: id, kind, name, family, version, creation time and batch."""

    id: str
    kind: str
    name: str | None
    family: str
    version: int | None
    created: str | None
    batch: int | None

    @classmethod
    def of(cls, kind: str, item: Mapping[str, Any]) -> VersionInfo:
        ident = str(item.get("Id") or "")
        parsed = ResourceId.parse(ident)
        name = item.get("Name")
        family = str(item.get("FamilyId") or (parsed.family if parsed else "")).lower()
        return cls(ident, kind, name if isinstance(name, str) else None, family, version_of(item),
                   iso_time(item.get("CreatedDate")), parsed.batch if parsed else None)

    @classmethod
    def bare(cls, kind: str, ident: str, name: str | None = None) -> VersionInfo:
        """A version known only by its id (the workspace does not answer for it)."""
        parsed = ResourceId.parse(ident)
        return cls(ident, kind, name, parsed.family if parsed else "", None, None, parsed.batch if parsed else None)

    @property
    def label(self) -> str:
        """"version 3" when known, else "batch 23"."""
        if self.version is not None:
            return f"version {self.version}"
        return f"batch {self.batch}" if self.batch is not None else self.id

    def known(self) -> Known:
        return Known(self.id, self.kind, self.name, self.version, self.created)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "kind": self.kind, "name": self.name, "family": self.family,
                "version": self.version, "created": self.created, "batch": self.batch}


@dataclass(frozen=True)
class Versions:
    """Asset versions of one workspace, each GET made once per command."""

    client: Client
    cache: dict[tuple[str, str], dict[str, Any] | None] = field(default_factory=dict)

    def item(self, kind: str, ident: str) -> dict[str, Any] | None:
        """The item of one version, None when the workspace does not have it (404)."""
        key = (kind, ident)
        if key not in self.cache:
            try:
                self.cache[key] = self.client.get_asset(COLLECTIONS[kind], ident)
            except ApiError as exc:
                if exc.status not in (400, 404):
                    raise
                self.cache[key] = None
        return self.cache[key]

    def info(self, kind: str, ident: str, name: str | None = None) -> VersionInfo:
        item = self.item(kind, ident)
        return VersionInfo.of(kind, item) if item is not None else VersionInfo.bare(kind, ident, name)

    def find(self, kind: str, latest: Mapping[str, Any], version: int,
             hints: Iterable[str] = ()) -> dict[str, Any] | None:
        """The item of `version` in the family of `latest` (the listed, newest item); None when it does not exist."""
        newest = version_of(latest)
        if newest is None or version > newest or version < 1:
            return None
        if newest == version:
            return dict(latest)
        top = ResourceId.parse(str(latest.get("Id") or ""))
        if top is None or top.batch is None:
            return None
        tried = set()
        for ident in hints:
            parsed = ResourceId.parse(ident)
            if parsed is None or parsed.family != top.family:
                continue
            tried.add(ident)
            item = self.item(kind, ident)
            if item is not None and version_of(item) == version:
                return item
        for batch in range(top.batch - 1, max(-1, top.batch - 1 - MAX_PROBES), -1):
            ident = f"{top.owner}.{top.family}.v1-default-{batch}"
            if ident in tried:
                continue
            item = self.item(kind, ident)
            found = version_of(item) if item is not None else None
            if found == version:
                return item
            if found is not None and found < version:
                return None
        return None
