"""Fixtures of the PostgreSQL store's own tests."""

from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit
from uuid import uuid4

import asyncpg
import pytest

from jobwire.backends.postgres.backend import parse_url


@pytest.fixture
async def fresh_database(postgres_url: str) -> AsyncIterator[str]:
    """URL of a new, empty database, dropped after the test."""
    name = f"jobwire_mig_{uuid4().hex[:12]}"
    dsn, _ = parse_url(postgres_url)
    admin = await asyncpg.connect(dsn)
    try:
        try:
            await admin.execute(f'CREATE DATABASE "{name}"')
        except asyncpg.InsufficientPrivilegeError:
            pytest.skip("the test server's role may not CREATE DATABASE")
        yield urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
