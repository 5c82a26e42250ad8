"""One error shape at the HTTP edge: ``{"error": {"code": ..., "message": ...}}``."""

import contextlib
import functools
import logging
from typing import Any

import redis.exceptions
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException

from jobwire.errors import InvalidRequest, JobwireError, Unauthenticated, Unavailable
from jobwire.server.responses import JsonResponse

logger = logging.getLogger("jobwire.server")


def error_response(status: int, code: str, message: str, **extra: Any) -> JsonResponse:
    """The JSON error body every failure uses."""
    return JsonResponse({"error": {"code": code, "message": message, **extra}}, status_code=status)


def install_error_handlers(app: FastAPI) -> None:
    """Translate every exception into the one error shape (never a bare 500 page)."""

    @app.exception_handler(JobwireError)
    async def jobwire_error(_: Request, exc: JobwireError) -> JsonResponse:
        response = error_response(exc.http_status, exc.code, str(exc))
        if isinstance(exc, Unauthenticated):
            response.headers["www-authenticate"] = 'Bearer realm="jobwire"'
        return response

    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JsonResponse:
        details = [
            {"field": ".".join(str(p) for p in err["loc"]), "message": err["msg"]}
            for err in exc.errors()
        ]
        summary = "; ".join(f"{d['field']}: {d['message']}" for d in details)
        return error_response(400, InvalidRequest.code, summary, details=details)

    @app.exception_handler(ValueError)
    @app.exception_handler(TypeError)
    async def bad_value(_: Request, exc: Exception) -> JsonResponse:
        return error_response(400, InvalidRequest.code, str(exc))

    @app.exception_handler(HTTPException)
    async def http_error(_: Request, exc: HTTPException) -> JsonResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail))

    async def unreachable(request: Request, exc: Exception) -> JsonResponse:
        logger.warning("backend unreachable on %s %s: %r", request.method, request.url.path, exc)
        return error_response(503, Unavailable.code, f"backend unreachable: {exc}")

    for kind in backend_unreachable():  # handled by class: the connection stays usable
        app.add_exception_handler(kind, unreachable)

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JsonResponse:
        logger.exception("unhandled error on %s %s", request.method, request.url.path)
        return error_response(500, "internal", "internal error; see the service log")


@functools.cache
def backend_unreachable() -> tuple[type[Exception], ...]:
    """Driver errors that mean "the store is down or unreachable" (answered with 503)."""
    kinds: list[type[Exception]] = [OSError, redis.exceptions.ConnectionError,
                                        redis.exceptions.TimeoutError]  # fmt: skip
    with contextlib.suppress(ImportError):
        import asyncpg

        kinds += [asyncpg.exceptions.PostgresConnectionError, asyncpg.exceptions.InterfaceError]
    return tuple(kinds)
