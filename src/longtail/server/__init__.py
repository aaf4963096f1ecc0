"""The annotation service: `longtail serve` (FastAPI + uvicorn) over the engine's use
cases (its commands, `longtail serve` and `longtail users`, are in
longtail.cli.service). A route parses its request, calls one use case and renders the result; the
pages (labeling, dashboard) are static files calling the same API.

    app      create_app(project_path, settings): the FastAPI application
    schemas  typed request and response models of every route
    settings ServerSettings (lease TTL, overlap, limits)

Importing this package loads nothing heavy: FastAPI loads with `longtail.server.app`.
"""

from __future__ import annotations

from typing import Any


def create_app(*args: Any, **kwargs: Any) -> Any:
    """See `longtail.server.app.create_app`."""
    from longtail.server.app import create_app as _create

    return _create(*args, **kwargs)
