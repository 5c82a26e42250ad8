"""``GuardedRoute``: a route that checks its bearer token before anything else.

A ``Depends(require(...))`` is declared as usual (on the route or its router), but instead
of being solved by FastAPI per request (which costs more than the check itself), the route
checks the permission first, then runs FastAPI's handler without that dependency.
"""

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request, Response
from fastapi.params import Depends
from fastapi.routing import APIRoute

from jobwire.server.auth import Permission, permission_of


class GuardedRoute(APIRoute):
    """An APIRoute that enforces its ``require`` dependencies itself."""

    def __init__(
        self,
        path: str,
        endpoint: Callable[..., Any],
        *,
        dependencies: Sequence[Depends] | None = None,
        **options: Any,
    ) -> None:
        declared = list(dependencies or ())
        guards = [d for d in declared if permission_of(d.dependency) is not None]
        rest = [d for d in declared if d not in guards]
        self.permissions: list[Permission] = [  # before super() builds the handler
            p for d in guards if (p := permission_of(d.dependency)) is not None
        ]
        super().__init__(path, endpoint, dependencies=rest, **options)
        self.dependencies = [*rest, *guards]  # as declared, should the route be copied

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()
        permissions = self.permissions
        if not permissions:
            return handler

        async def guarded(request: Request) -> Response:
            authorization = request.headers.get("authorization")
            for permission in permissions:
                request.app.state.auth.check(authorization, permission)
            return await handler(request)

        return guarded
