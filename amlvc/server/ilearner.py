"""The one stand-in `.iLearner` format of the local workspace: the bytes of every trained model, its fingerprint.

A real iLearner is an opaque binary (web-services.md §8.11). Every trained model this server makes
(experiment-run outputs, and so promoted models; BES retraining outputs; stand-ins for seeded models
and run artefacts without content) is

    AMLVC-ILEARNER/2\\n{"fingerprint":"<sha256>","trainedOn":{…}}\\n

where `trainedOn` is what the model derives from — the training module and its parameters, and the
sha256 of each input's bytes (never where they are stored, never a key or SAS) — written as canonical
JSON, and the fingerprint is the sha256 of that canonical JSON. The same training gives the same
bytes; training on other data or with other parameters gives another fingerprint. Scoring reads the
fingerprint (`fingerprint()`); for bytes in any other format (a real iLearner uploaded by hand) it is
the sha256 of the bytes, so scoring still depends on exactly the model's content.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

MAGIC = b"AMLVC-ILEARNER/2\n"
MAX_HEADER_BYTES = 1024 * 1024  # a stand-in model is small; anything bigger is some other file


def _canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


@dataclass(frozen=True)
class Model:
    """A parsed stand-in model: its fingerprint and what it was trained on."""

    fingerprint: str
    trained_on: Mapping[str, Any]


def model_bytes(trained_on: Mapping[str, Any]) -> bytes:
    """The bytes of the model trained on `trained_on` (JSON values only); equal inputs give equal bytes."""
    fingerprint = hashlib.sha256(_canonical(trained_on)).hexdigest()
    return MAGIC + _canonical({"fingerprint": fingerprint, "trainedOn": trained_on}) + b"\n"


def parse(data: bytes) -> Model | None:
    """The model in `data`, or None when it is not this format or its fingerprint does not match its content."""
    if not data.startswith(MAGIC) or len(data) > MAX_HEADER_BYTES:
        return None
    try:
        document = json.loads(data[len(MAGIC):].decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return None
    if not isinstance(document, dict) or not isinstance(document.get("trainedOn"), dict):
        return None
    fingerprint = hashlib.sha256(_canonical(document["trainedOn"])).hexdigest()
    if document.get("fingerprint") != fingerprint:
        return None
    return Model(fingerprint, document["trainedOn"])


def fingerprint(data: bytes) -> str:
    """What scoring depends on: a stand-in model's fingerprint, else the sha256 of the bytes."""
    model = parse(data)
    return model.fingerprint if model is not None else hashlib.sha256(data).hexdigest()


def stored_fingerprint(path: Path, size: int, sha256: str) -> str:
    """`fingerprint()` of a stored file, without reading a large one (only a small file can be a stand-in)."""
    return fingerprint(path.read_bytes()) if size <= MAX_HEADER_BYTES else sha256


def stand_in(identity: str, kind: str = "trainedmodels") -> bytes:
    """A model with nothing known about its training (a seeded asset or run artefact): derived from its identity."""
    return model_bytes({"standIn": identity, "kind": kind})
