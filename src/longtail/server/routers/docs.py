"""The API docs: Swagger UI at /docs and ReDoc at /redoc, served from the files of an
installed package (fastapi-offline, in the `serve` extra), never from a CDN, so they work
offline and load nothing from elsewhere. Without the package there are no docs pages
(the schema stays at /openapi.json)."""

from pathlib import Path

from fastapi import APIRouter
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse

from longtail.server.routers.pages import static_file


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
