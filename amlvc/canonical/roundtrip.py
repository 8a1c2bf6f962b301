"""The lossless check: a document through normalize and denormalize (or their WSD forms) and back."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from amlvc import rules
from amlvc.canonical import webservice as wsd
from amlvc.canonical.checks import classify
from amlvc.canonical.compare import compare
from amlvc.canonical.denormalize import denormalize
from amlvc.canonical.normalize import normalize
from amlvc.canonical.secrets import placeholder, placeholders_in

__all__ = ["verify_roundtrip"]


def verify_roundtrip(doc: Mapping[str, Any], source: str = "<document>") -> list[str]:
    """One line per field of `doc` that would not survive normalize + denormalize ([] = lossless).

    Web-service definitions are compared modulo key case; lists with identity (rules.IDENTITY_LISTS) as sets.
    A second normalize of the restored document must give the same files (idempotence).
    """
    if classify(doc, source) == "wsd":
        return wsd.verify_wsd(doc, source)
    result = normalize(doc, source=source)
    # Placeholders already in the input stay placeholders: fill them with themselves.
    secrets = {name: placeholder(name) for name in placeholders_in(doc)}
    secrets.update(result.secrets)
    back = denormalize(result.files, identity=result.identity, volatile=result.volatile, secrets=secrets,
                       source=source)
    problems = compare(doc, back, identity_lists=rules.IDENTITY_LISTS)
    again = normalize(back, source=source)
    for name in sorted(set(result.files) | set(again.files)):
        if result.files.get(name) != again.files.get(name):
            problems.append(f"{name}: normalizing the restored document changes this file (not idempotent)")
    return problems
