"""One error shape at the HTTP edge: ``{"error": {"code": ..., "message": ...}}``."""

import logging
from typing import Any

import pydantic
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from jobwire.errors import InvalidRequest, JobwireError, Unauthenticated, Unavailable
from jobwire.server.errors import as_jobwire_error, backend_unreachable
from jobwire.server.rest.responses import JsonResponse

logger = logging.getLogger("jobwire.server")
RETRY_AFTER_S = "1"  # what a 503 asks clients to wait


def error_response(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    """The JSON error body every failure uses."""
    return JsonResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Translate every exception into the one error shape (never a bare 500 page)."""

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JsonResponse:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return error_response(400, InvalidRequest.code, summary, details=details)

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JsonResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    async def translated(request: Request, exc: Exception) -> JsonResponse:
        error = as_jobwire_error(exc)
        assert error is not None, "registered only for the classes the map knows"
        response = error_response(error.http_status, error.code, str(error))
        if isinstance(error, Unauthenticated):
            response.headers["www-authenticate"] = 'Bearer realm="jobwire"'
        elif isinstance(error, Unavailable):
            logger.warning("store unreachable on %s %s: %r", request.method, request.url.path, exc)
            response.headers["retry-after"] = RETRY_AFTER_S
        return response

    # By class, so that the connection stays usable (a handler for Exception re-raises).
    kinds: tuple[type[Exception], ...] = (
        JobwireError, ValueError, TypeError, pydantic.ValidationError, *backend_unreachable()
    )  # fmt: skip
    for kind in kinds:
        app.add_exception_handler(kind, translated)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JsonResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the service log")
