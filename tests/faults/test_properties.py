"""Property-based edges of every enqueue field: the schema and Job.validate agree, and an
accepted job is one every store holds (hypothesis; no service needed)."""

from typing import Any

import pydantic
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from jobwire.job import LIMITS
from jobwire.server.schemas import EnqueueRequest

INTS = st.one_of(st.integers(), st.integers(min_value=-(2**70), max_value=2**70),
                 st.sampled_from([-2, -1, 0, 2**31 - 1, 2**31, 2**63, 10**16, 10**20]))  # fmt: skip
FLOATS = st.one_of(st.floats(allow_nan=True, allow_infinity=True),
                   st.sampled_from([0.0, 1e9, 1e9 + 1, 1e300, -0.0, 2.6e11]))  # fmt: skip
TEXT = st.one_of(st.text(max_size=600), st.sampled_from(["", "\x00", "a\x00b", "f" * 201]))
FIELD = st.sampled_from(["retries", "ttl", "priority", "timeout", "heartbeat", "scheduled",
                         "retry_delay", "retry_backoff", "function", "key"])  # fmt: skip


@settings(max_examples=150, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow])  # fmt: skip
@given(field=FIELD, number=INTS, real=FLOATS, text=TEXT)
def test_schema_and_validate_agree(field: str, number: int, real: float, text: str) -> None:
    value: Any = {"retries": number, "ttl": number, "priority": number}.get(field)
    if field in ("function", "key"):
        value = text
    elif value is None:
        value = real
    try:
        request = EnqueueRequest.model_validate({"function": "f", field: value})
    except pydantic.ValidationError:
        return  # 400 at the edge: nothing reaches a store
    job = request.to_job("q")
    job.validate()  # the schema never lets through what Job.validate refuses
    assert -1 <= job.ttl <= LIMITS.ttl_max < 2**31
    assert 0 <= job.retries <= LIMITS.retries_max < 2**31 - 1
    assert "\x00" not in job.function and "\x00" not in (job.key or "")


@pytest.mark.parametrize("field", ["retries", "ttl"])
def test_int32_edge(field: str) -> None:
    top = LIMITS.retries_max if field == "retries" else LIMITS.ttl_max
    EnqueueRequest.model_validate({"function": "f", field: top}).to_job("q").validate()
    with pytest.raises(pydantic.ValidationError):
        EnqueueRequest.model_validate({"function": "f", field: top + 1})
