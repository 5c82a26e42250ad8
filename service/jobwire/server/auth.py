"""Bearer tokens with roles, checked in constant time."""

import enum
import hmac
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import Request

from jobwire.errors import Forbidden, Unauthenticated
from jobwire.flow import BulkAction


class Role(enum.StrEnum):
    """What a token may do."""

    CLIENT = "client"  # enqueue, read, abort, retry
    WORKER = "worker"  # lease, heartbeat, complete, fail, read; enqueue (cron, follow-ups)
    ADMIN = "admin"  # everything, plus delete, pause and queue settings


class Permission(enum.StrEnum):
    """One kind of request."""

    READ = "read"
    ENQUEUE = "enqueue"
    CONTROL = "control"  # abort, retry
    WORK = "work"  # lease, heartbeat, complete, fail
    DELETE = "delete"
    CONFIGURE = "configure"  # pause, resume, queue settings


GRANTS: dict[Role, frozenset[Permission]] = {
    Role.CLIENT: frozenset({Permission.READ, Permission.ENQUEUE, Permission.CONTROL}),
    # Workers enqueue too: cron ticks and follow-up jobs run on a worker's token.
    Role.WORKER: frozenset({Permission.READ, Permission.ENQUEUE, Permission.WORK}),
    Role.ADMIN: frozenset(Permission),
}
# A bulk operation needs what its single-job form needs.
BULK_PERMISSIONS: dict[BulkAction, Permission] = {
    BulkAction.RETRY: Permission.CONTROL,
    BulkAction.ABORT: Permission.CONTROL,
    BulkAction.DELETE: Permission.DELETE,
}


def parse_tokens(text: str) -> dict[str, Role]:
    """Parse ``token:role`` pairs separated by commas or newlines.

    Raises:
        ValueError: A pair is malformed or names an unknown role.
    """
    roles: dict[str, Role] = {}
    for raw in text.replace(",", "\n").splitlines():
        entry = raw.strip()
        if not entry or entry.startswith("#"):
            continue
        token, sep, role = entry.rpartition(":")
        if not sep or not token:
            raise ValueError(f"token entry must be 'token:role', got {entry!r}")
        try:
            roles[token] = Role(role.strip())
        except ValueError:
            raise ValueError(f"unknown role {role!r}; roles: client, worker, admin") from None
    return roles


class Authenticator:
    """Resolves a request's bearer token to a role (everyone is admin without tokens)."""

    def __init__(self, tokens: dict[str, Role]) -> None:
        self._tokens = [(token.encode(), role) for token, role in tokens.items()]

    @property
    def enabled(self) -> bool:
        """Whether tokens are required."""
        return bool(self._tokens)

    def role_of(self, authorization: str | None) -> Role:
        """The role of an ``Authorization`` header value.

        Raises:
            Unauthenticated: Missing, malformed or unknown token.
        """
        if not self._tokens:
            return Role.ADMIN
        scheme, _, presented = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not presented:
            raise Unauthenticated("missing bearer token (Authorization: Bearer <token>)")
        found: Role | None = None
        candidate = presented.strip().encode()
        for token, role in self._tokens:  # compare with all, in constant time each
            if hmac.compare_digest(token, candidate):
                found = role
        if found is None:
            raise Unauthenticated("unknown token")
        return found

    def check(self, authorization: str | None, permission: Permission) -> None:
        """Raise unless the header's token grants ``permission``."""
        role = self.role_of(authorization)
        if permission not in GRANTS[role]:
            raise Forbidden(f"role {role} may not {permission}")


def require(permission: Permission) -> Callable[[Request], Awaitable[None]]:
    """A FastAPI dependency that enforces ``permission``.

    Routes of ``rest.routes.GuardedRoute`` check it themselves before FastAPI solves the
    route's parameters (cheaper than solving a dependency per request); elsewhere it
    runs as a plain dependency.
    """

    async def dependency(request: Request) -> None:  # async: a sync one runs in a thread
        request.app.state.auth.check(request.headers.get("authorization"), permission)

    dependency.permission = permission  # type: ignore[attr-defined]
    return dependency


def permission_of(dependency: Any) -> Permission | None:
    """The permission a ``require`` dependency enforces (``None``: another dependency)."""
    return getattr(dependency, "permission", None)
