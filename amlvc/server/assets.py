"""Studio API assets routes (being built)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("assets", __name__, url_prefix="/api")
