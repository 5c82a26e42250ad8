"""The web dashboard at ``/ui``: static pages and a small script of our own (a few ES
modules, loaded from ``/ui/static``).

The pages carry no data (and never a token): the script reads everything through the
REST API with the viewer's bearer token, so the UI has no second path into the store and
every action passes the same checks as any other client.
"""

from importlib import resources

from fastapi import APIRouter, Path
from fastapi.responses import RedirectResponse, Response

from jobwire.job import JOB_ID_PATTERN, NAME_PATTERN

router = APIRouter(include_in_schema=False)
STATIC = resources.files(__package__) / "static"
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}
# Our own script and styles only: no inline script, no third-party origin.
SECURITY_HEADERS = {
    "content-security-policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:;"
        " connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    ),
    "x-content-type-options": "nosniff",
    "referrer-policy": "no-referrer",
    "cache-control": "no-cache",
}


def _page() -> Response:
    """The one HTML shell; the script renders the page its URL names."""
    body = (STATIC / "index.html").read_bytes()
    return Response(body, media_type="text/html; charset=utf-8", headers=SECURITY_HEADERS)


@router.get("/")
async def root() -> RedirectResponse:
    """The dashboard lives at ``/ui``."""
    return RedirectResponse("/ui", status_code=307)


@router.get("/ui")
async def overview() -> Response:
    """Every queue, live."""
    return _page()


@router.get("/ui/queues/{queue}")
async def queue_page(queue: str = Path(pattern=NAME_PATTERN)) -> Response:
    """One queue: its jobs and workers."""
    return _page()


@router.get("/ui/jobs/{job_id}")
async def job_page(job_id: str = Path(pattern=JOB_ID_PATTERN)) -> Response:
    """One job, live, with its actions."""
    return _page()


@router.get("/ui/static/{name}")
async def static(name: str = Path(pattern=r"^[a-z]+\.(js|css|svg)$")) -> Response:
    """The script and styles (package data)."""
    file = STATIC / name
    if not file.is_file():
        return Response(status_code=404)
    suffix = name[name.rindex(".") :]
    return Response(file.read_bytes(), media_type=MEDIA_TYPES[suffix], headers=SECURITY_HEADERS)
