"""The pages: the labeling page and the dashboard (static files, no build step, calling
the same API as everyone), and their static files."""

from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, RedirectResponse

STATIC = Path(__file__).resolve().parent.parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
def root() -> RedirectResponse:
    return RedirectResponse("/label")


@router.get("/label")
def label_page() -> FileResponse:
    return FileResponse(STATIC / "label.html")


@router.get("/dashboard")
def dashboard_page() -> FileResponse:
    return FileResponse(STATIC / "dashboard.html")


@router.get("/static/{path:path}")
def static(path: str) -> FileResponse:
    return FileResponse(static_file(STATIC, path))


def static_file(root: Path, path: str) -> Path:
    """The file `path` names under `root`, or a 404: never a file outside `root`
    (`..`, absolute paths, links out, encoded separators), checked before any read."""
    root = root.resolve()
    if "\x00" in path or "\\" in path:
        raise HTTPException(404, "not found")
    target = (root / path).resolve()
    if not target.is_relative_to(root) or not target.is_file():
        raise HTTPException(404, "not found")
    return target
