"""Fixtures of the fault suite: stores of its own, and services on them over both transports."""

from collections.abc import Iterator

import pytest
from fault_helpers import Service, start
from service_fixtures import stop_service
from stores import OwnPostgres, OwnRedis

SERVICE_ENV = {"JOBWIRE_SWEEP_INTERVAL_S": "1", "JOBWIRE_STORE_TIMEOUT_S": "2"}


@pytest.fixture(scope="session")
def own_redis() -> Iterator[OwnRedis]:
    """A Redis of the fault suite's own (tests may stop and stall it)."""
    server = OwnRedis()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session")
def own_postgres() -> Iterator[OwnPostgres]:
    """A PostgreSQL of the fault suite's own (tests may stop and stall it)."""
    server = OwnPostgres()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture(scope="session", params=["redis", "postgres"])
def store_service(
    request: pytest.FixtureRequest, own_redis: OwnRedis, own_postgres: OwnPostgres
) -> Iterator[Service]:
    """A service with both ports on one of the suite's own stores."""
    url = own_redis.url if request.param == "redis" else own_postgres.url
    service = start(url, env=SERVICE_ENV)
    try:
        yield service
    finally:
        stop_service(service.proc)
