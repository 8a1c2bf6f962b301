"""Studio API experiments routes (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("experiments", __name__, url_prefix="/api")
