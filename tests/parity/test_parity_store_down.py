"""Parity when the store is unreachable: REST answers 503 ``unavailable``, and the proto
says gRPC answers UNAVAILABLE ("the service is shutting down or its store is unreachable").
"""

import functools
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from grpc_helpers import GrpcService, unique_name
from parity_transport import Connect, Transport, refused


@pytest.fixture
def cut_off(request: pytest.FixtureRequest, store_down: GrpcService, connect: Connect) -> Transport:
    """The transport under test, on the service whose store is down."""
    return connect(request.param, store_down)


@pytest.mark.parametrize("cut_off", ["rest", "grpc"], indirect=True)
async def test_an_unreachable_store_is_unavailable(cut_off: Transport) -> None:
    queue = unique_name("down")
    calls: dict[str, Callable[[], Awaitable[Any]]] = {
        "enqueue": functools.partial(cut_off.enqueue, queue, {"function": "f"}),
        "get": functools.partial(cut_off.get, unique_name("job"), queue=queue),
        "lease": functools.partial(cut_off.lease, queue, "w"),
    }
    answers = {what: await refused(call()) for what, call in calls.items()}
    kinds = {what: (error.kind, error.code) for what, error in answers.items()}
    assert kinds == dict.fromkeys(calls, ("unavailable", "unavailable")), answers
