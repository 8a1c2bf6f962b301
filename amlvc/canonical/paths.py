"""JSON Pointers (RFC 6901) of places inside documents, built eagerly or lazily for error messages."""

from __future__ import annotations

from typing import Any


def pointer(*parts: str | int) -> str:
    """The JSON Pointer (RFC 6901) of a path."""
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def child(path: str, part: str | int) -> str:
    """Extend a JSON Pointer by one step."""
    return path + "/" + str(part).replace("~", "~0").replace("/", "~1")


# A path inside a document: a JSON Pointer string, or (parent, key) pairs rendered only when an error needs it
# (the hot loops of normalize would otherwise build a string per value).
Where = str | tuple[Any, str | int]


def at(parent: Where, key: str | int) -> Where:
    """A child path, built lazily."""
    return (parent, key)


def pointer_of(where: Where) -> str:
    """The JSON Pointer of a path."""
    parts: list[str | int] = []
    while isinstance(where, tuple):
        parts.append(where[1])
        where = where[0]
    return where + pointer(*reversed(parts))
