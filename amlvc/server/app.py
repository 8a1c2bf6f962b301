"""The Flask application of the local workspace: blueprints, limits and error handlers wired together."""

from __future__ import annotations

from flask import Flask

from amlvc.server import arm, assets, bes, blobs, deploy, experiments, rrs, studio, uploads, webservices
from amlvc.server.bodies import MAX_BODY_BYTES
from amlvc.server.errors import register_error_handlers
from amlvc.server.state import STATE_KEY, ServerState


def create_app(state: ServerState) -> Flask:
    """A Flask app serving every API of the local workspace from one ServerState."""
    app = Flask("amlvc.server")
    # Bodies are read by server/bodies.py, which enforces its limits itself (chunked bodies too); Flask's own
    # limit only guards a reader that would bypass it.
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["PROPAGATE_EXCEPTIONS"] = False
    app.config["TRAP_HTTP_EXCEPTIONS"] = False
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.url_map.strict_slashes = False
    app.url_map.converters["account"] = blobs.AccountConverter  # path-style blob URLs (storage.py)
    app.extensions[STATE_KEY] = state
    register_error_handlers(app)
    # Every route of the service, family by family (the order only matters where two rules could match).
    for blueprint in (studio.bp, experiments.bp, assets.bp, uploads.bp, deploy.bp, blobs.bp, webservices.bp, arm.bp,
                      bes.bp, rrs.bp):
        app.register_blueprint(blueprint)
    return app
