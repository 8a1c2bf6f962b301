"""Placeholder for the webservices routes of the local workspace (filled by the web-services work)."""

from __future__ import annotations

from flask import Blueprint

bp = Blueprint("webservices", __name__)
