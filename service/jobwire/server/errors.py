"""One error map for both transports: whatever an operation raises, as a ``JobwireError``.

Each ``JobwireError`` names its HTTP status and gRPC code; the REST and gRPC edges call
``as_jobwire_error`` once and answer with those. Bad input (``ValueError``/``TypeError``,
pydantic's validation errors) is ``InvalidRequest``; a store that is down or unreachable
is ``Unavailable`` (503 / UNAVAILABLE); anything else is ``None``: an internal error,
logged and answered without internals.
"""

import contextlib
import functools

import pydantic
import redis.exceptions

from jobwire.errors import InvalidRequest, JobwireError, Unavailable


def as_jobwire_error(exc: BaseException) -> JobwireError | None:
    """The ``JobwireError`` that ``exc`` stands for (``None``: an internal error)."""
    if isinstance(exc, JobwireError):
        return exc
    if isinstance(exc, pydantic.ValidationError):
        return InvalidRequest(validation_summary(exc))
    if isinstance(exc, ValueError | TypeError):
        return InvalidRequest(str(exc))
    if isinstance(exc, backend_unreachable()):
        return Unavailable(f"store unreachable: {exc}")
    return None


def validation_summary(exc: pydantic.ValidationError) -> str:
    """Each invalid field and why, on one line."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}" for error in exc.errors()
    )


@functools.cache
def backend_unreachable() -> tuple[type[Exception], ...]:
    """Driver errors that mean "the store is down or unreachable" (answered with 503)."""
    kinds: list[type[Exception]] = [OSError, redis.exceptions.ConnectionError,
                                        redis.exceptions.TimeoutError]  # fmt: skip
    with contextlib.suppress(ImportError):
        import asyncpg

        kinds += [
            asyncpg.exceptions.PostgresConnectionError,
            asyncpg.exceptions.InterfaceError,
            # A connection the server terminated mid-call ("cannot switch to state 12").
            asyncpg.exceptions.InternalClientError,
            asyncpg.exceptions.ConnectionDoesNotExistError,
            # pg_terminate_backend, a shutting-down or restarting server.
            asyncpg.exceptions.AdminShutdownError,
            asyncpg.exceptions.CannotConnectNowError,
            asyncpg.exceptions.QueryCanceledError,
        ]
    return tuple(kinds)
