"""Trained models behind web services: model versions named in service.json, their verified bytes, and the
storage account a service reads them from.

A version named `churn-model@4` is a manifest under models/ whose bytes are in the object store (verified on every
read: exit 6 when they no longer hash to the manifest's sha256). Pushing it puts those bytes into the remote's
storage account under `amlvc-models/<sha256>.ilearner` (Put Blob with the account's key), so the uri a service is
pointed at names the very bytes that were checked, and reading a service back names its model from the uri alone.
A model met for the first time (an endpoint's resource after a deploy) is downloaded, stored and added to the
manifest of its name.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from amlvc import config, rules
from amlvc.canonical.services import parse_ref, ref
from amlvc.client import Client
from amlvc.client.webservices import account_url, upload_blob
from amlvc.errors import MissingSecret, ValidationError
from amlvc.sync.datasets import same_name
from amlvc.sync.models import make_version
from amlvc.sync.remote import Target
from amlvc.worktree import models, objects, secretfile
from amlvc.worktree.models import Manifest, ModelSource, ModelVersion

_CONTENT_ADDRESSED = re.compile(rf"^/{rules.MODEL_CONTAINER}/(?P<sha>[0-9a-f]{{64}})\.ilearner$")


def sha_of_url(url: str) -> str | None:
    """The sha256 a model uri names by its blob name (`…/amlvc-models/<sha256>.ilearner`), else None."""
    try:
        return (m.group("sha") if (m := _CONTENT_ADDRESSED.match(urlsplit(url).path)) else None)
    except ValueError:
        return None


def model_name(resource: str) -> str:
    """The model an endpoint resource or a Resource asset holds: its name without " [trained model]"."""
    name = resource.strip()
    return name[: -len(rules.TRAINED_MODEL_SUFFIX)] if name.endswith(rules.TRAINED_MODEL_SUFFIX) else name


@dataclass
class ModelBook:
    """The manifests as one command sees and extends them (`changed` are written in the command's commit)."""

    root: Path
    manifests: dict[str, Manifest]
    changed: dict[str, Manifest] = field(default_factory=dict)
    added: list[str] = field(default_factory=list)  # the versions added, as NAME@VERSION

    @classmethod
    def load(cls, root: Path) -> ModelBook:
        return cls(root, models.load_all(root))

    def resolve(self, text: str) -> tuple[Manifest, ModelVersion]:
        """The manifest and version NAME@VERSION names; ValidationError (6) naming what there is otherwise."""
        name, number = parse_ref(text)
        manifest = models.find(self.manifests, name)
        if manifest is None:
            known = ", ".join(sorted(self.manifests)) or "none yet"
            raise ValidationError(f"no model {name!r} under {rules.MODELS_DIR}/ (models: {known}); nothing was "
                                  f"changed. `amlvc model pull`, `model promote` or `retrain` adds versions")
        version = manifest.version(number)
        if version is None:
            have = ", ".join(str(v.version) for v in manifest.versions) or "none"
            raise ValidationError(f"{models.path(manifest.slug)} has no version {number} (versions: {have}); "
                                  f"nothing was changed")
        return manifest, version

    def canonical(self, text: str) -> str:
        """NAME@VERSION as service.json writes it: the manifest's slug."""
        manifest, version = self.resolve(text)
        return ref(manifest.slug, version.version)

    def read(self, text: str) -> tuple[ModelVersion, bytes]:
        """The version's bytes from the object store, hashed: exit 6 when they differ from the manifest's sha256."""
        manifest, version = self.resolve(text)
        where = f"{models.path(manifest.slug)} ({text})"
        return version, objects.read(self.root, version.sha256, what=where,
                                     hint=f"Fetch it again (`amlvc model pull '{text}'`) before deploying it.")

    def ref_of_sha(self, sha256: str) -> str | None:
        for manifest in self.manifests.values():
            for version in manifest.versions:
                if version.sha256 == sha256:
                    return ref(manifest.slug, version.version)
        return None

    def name_uri(self, uri: str) -> str | None:
        """The model version a content-addressed uri names (None for any other uri, or bytes no manifest has)."""
        sha = sha_of_url(uri)
        return self.ref_of_sha(sha) if sha else None

    def add(self, name: str, version: ModelVersion, family: str = "") -> str:
        """Add `version` to the manifest of model `name` (a new manifest when there is none); its reference."""
        manifest = models.find(self.manifests, name)
        if manifest is None:
            manifest = Manifest(models.slug_for(self.manifests, name, family), name, family, ())
        numbers = {v.version for v in manifest.versions}
        if version.version in numbers:
            version = ModelVersion(max(numbers) + 1, version.id, version.data_type, version.size, version.sha256,
                                   version.created, version.description, version.source)
        manifest = manifest.with_version(version)
        self.manifests[manifest.slug] = self.changed[manifest.slug] = manifest
        self.added.append(ref(manifest.slug, version.version))
        return ref(manifest.slug, version.version)

    def next_version(self, name: str, workspace_latest: int = 0) -> int:
        manifest = models.find(self.manifests, name)
        top = max((v.version for v in manifest.versions), default=0) if manifest else 0
        return max(top, workspace_latest) + 1

    def learn(self, client: Client, resource: str, data: bytes, location: str) -> str:
        """The reference of bytes met behind a service: a version the manifests have, else a new version of the
        model named by the resource (the workspace's trained model of that name gives its id and version)."""
        stored = objects.store(self.root, data)
        known = self.ref_of_sha(stored.sha256)
        if known is not None:
            return known
        name = model_name(resource)
        item = same_name(client.list_trainedmodels(), name)
        manifest = models.find(self.manifests, name)
        if item is not None and (manifest is None or manifest.by_id(str(item.get("Id"))) is None):
            return self.add(name, make_version(item, data, ModelSource()), str(item.get("FamilyId") or "").lower())
        version = ModelVersion(self.next_version(name), location, rules.TRAINED_MODEL_DATA_TYPE, stored.size,
                               stored.sha256, None, f"found behind {resource!r}")
        return self.add(name, version)


# -- the storage account a service reads its models (and batch inputs) from ---------------------------------------


@dataclass(frozen=True)
class Storage:
    """A storage account and its key (from the environment or the secrets file; never shown or written)."""

    account: str
    key: str = field(repr=False)

    def connection_string(self) -> str:
        return f"DefaultEndpointsProtocol=https;AccountName={self.account};AccountKey={self.key}"


def settings(root: Path, remote: str) -> config.WebServiceSettings:
    return config.load(root).remote(remote).webservices or config.WebServiceSettings()


def storage_key(root: Path, target: Target, service: str | None) -> str | None:
    """`$AMLVC_SECRET_STORAGE_ACCOUNT_KEY`, else the secrets file (the service's section, then the remote's)."""
    sections = [f"{rules.WEBSERVICES_DIR}/{service}"] if service else []
    stored: dict[str, str] = {}
    for section in [*sections, rules.WEBSERVICES_DIR]:
        for key, value in secretfile.load(root).get(target.name, {}).get(section, {}).items():
            stored.setdefault(key, value)
    _, values = secretfile.lookup([rules.STORAGE_KEY_SECRET], stored)
    return values.get(rules.STORAGE_KEY_SECRET)


def storage(root: Path, target: Target, service: str | None, why: str) -> Storage:
    """The remote's storage account (amlvc.toml, else the workspace's own) with its key; MissingSecret (6) without."""
    account = settings(root, target.name).storage_account
    if account is None:
        account = str(target.client.get_workspace().get("UserStorage") or "")
    if not account:
        raise ValidationError(f"remote '{target.name}' names no storage account ({why}); set storage_account "
                              f"in [remotes.{target.name}.webservices] of {rules.CONFIG_FILE}")
    key = storage_key(root, target, service)
    if key is None:
        raise MissingSecret(f"{why} needs the key of storage account {account!r}: set "
                            f"{rules.SECRET_ENV_PREFIX}{rules.STORAGE_KEY_SECRET}, or add {rules.STORAGE_KEY_SECRET} "
                            f"to {rules.SECRETS_FILE} under remotes.{target.name}.{rules.WEBSERVICES_DIR}; "
                            "nothing was changed")
    return Storage(account, key)


def model_url(account: str, sha256: str) -> str:
    return account_url(account, f"{rules.MODEL_CONTAINER}/{sha256}.ilearner")


def upload_model(client: Client, store: Storage, version: ModelVersion, data: bytes, text: str) -> str:
    """Put a verified model into the storage account, named by its sha256; its uri (no SAS, no host of ours)."""
    return upload_blob(client, store.account, f"{rules.MODEL_CONTAINER}/{version.sha256}.ilearner", data,
                       store.key, what=f"model {text}")


def resource_location(url: str) -> dict[str, Any]:
    """A classic endpoint resource's `Location` for a blob uri (the service reads its own storage with its key)."""
    parts = urlsplit(url)
    return {"BaseLocation": f"{parts.scheme}://{parts.netloc}/", "RelativeLocation": parts.path.lstrip("/"),
            "SasBlobToken": ""}
