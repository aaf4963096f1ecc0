"""The API docs: Swagger UI at /docs and ReDoc at /redoc, served from the files of an
installed package (fastapi-offline, in the `serve` extra), never from a CDN, so they work
offline and load nothing from elsewhere. Without the package there are no docs pages
(the schema stays at /openapi.json). The schema itself: `openapi_schema`."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from longtail.server.routers.pages import static_file
from longtail.server.settings import ServerSettings


def assets() -> Path | None:
    """The folder of the installed Swagger UI and ReDoc files, or None."""
    try:
        import fastapi_offline
    except ImportError:
        return None
    folder = Path(fastapi_offline.__file__).resolve().parent / "static"
    return folder if (folder / "swagger-ui-bundle.js").is_file() else None


def make_router(folder: Path) -> APIRouter:
    """/docs, /redoc and their files (/docs-static/*) from `folder`."""
    router = APIRouter(include_in_schema=False)

    @router.get("/docs")
    def swagger() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url="/openapi.json", title="longtail API",
                                   swagger_js_url="/docs-static/swagger-ui-bundle.js",
                                   swagger_css_url="/docs-static/swagger-ui.css",
                                   swagger_favicon_url="/docs-static/favicon.png")

    @router.get("/redoc")
    def redoc() -> HTMLResponse:
        return get_redoc_html(openapi_url="/openapi.json", title="longtail API",
                              redoc_js_url="/docs-static/redoc.standalone.js",
                              redoc_favicon_url="/docs-static/favicon.png",
                              with_google_fonts=False)

    @router.get("/docs-static/{path:path}")
    def files(path: str) -> FileResponse:
        return FileResponse(static_file(folder, path))

    return router


def openapi_schema(app: FastAPI, settings: ServerSettings) -> dict[str, Any]:
    """FastAPI's schema, with this server's page size as the maximum of every `limit`
    (a setting, so the routes cannot declare it), and the bearer scheme on every
    operation that answers 401 (declared here rather than by a per-request dependency:
    the token is read once, in `deps.current_user`)."""
    if app.openapi_schema is None:
        spec = FastAPI.openapi(app)
        spec.setdefault("components", {})["securitySchemes"] = {
            "bearer": {"type": "http", "scheme": "bearer",
                       "description": "A user's token: `longtail users add NAME`."},
            "basic": {"type": "http", "scheme": "basic",
                      "description": "The ML-backend routes' credentials (`--ml-auth`)."}}
        for ops in spec.get("paths", {}).values():
            for op in ops.values():
                if "label-studio" in op.get("tags", ()):  # behind --ml-auth when given
                    if getattr(settings, "ml_auth", None):
                        op["security"] = [{"basic": []}]
                        op["responses"]["401"] = {
                            "description": "Not the `--ml-auth` basic-auth credentials.",
                            "content": {"application/json": {"schema": {
                                "$ref": "#/components/schemas/Error"}}}}
                elif "401" in op.get("responses", {}):
                    op["security"] = [{"bearer": []}]
                for p in op.get("parameters", []):
                    if p.get("name") == "limit":
                        for t in [p["schema"], *p["schema"].get("anyOf", [])]:
                            if t.get("type") == "integer":
                                t["maximum"] = settings.max_page
    return app.openapi_schema  # type: ignore[return-value]
