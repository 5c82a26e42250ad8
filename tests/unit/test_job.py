"""Pure unit tests of Job, ErrorInfo and CronJob: no queue, no I/O."""

import dataclasses
import math
from typing import Any

import pytest

from jobwire import CronJob, ErrorInfo, Job, JobAborted, JobFailed, Status

# --- Job.validate -------------------------------------------------------------------


def test_default_job_is_valid() -> None:
    job = Job("add", kwargs={"a": 1, "b": [1, 2], "c": {"d": None}})
    job.validate()
    assert job.status is Status.QUEUED
    assert job.attempts == 0
    assert not job.finished


@pytest.mark.parametrize(
    "options",
    [
        {"priority": -1000},
        {"priority": 1000},
        {"ttl": -1},
        {"ttl": 0},
        {"timeout": 0.001},
        {"timeout": None},
        {"retries": 0},
        {"retry_backoff": True},
        {"retry_backoff": 5.0},
        {"retry_delay": 0},
        {"heartbeat": 0},
        {"key": "k"},
    ],
    ids=repr,
)
def test_boundary_options_are_valid(options: dict[str, Any]) -> None:
    Job("fn", **options).validate()


class _Opaque:
    """A value JSON cannot encode, with the same test id in every process (pytest-xdist)."""

    def __repr__(self) -> str:
        return "_Opaque()"


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"timeout": "5"}, "timeout"),
        ({"timeout": True}, "timeout"),
        ({"heartbeat": "1"}, "heartbeat"),
        ({"scheduled": "now"}, "scheduled"),
        ({"retry_delay": [1]}, "retry_delay"),
        ({"retries": 1.5}, "retries"),
        ({"retries": True}, "retries"),
        ({"ttl": "600"}, "ttl"),
        ({"priority": 1.0}, "priority"),
        ({"key": 5}, "key"),
        ({"retry_backoff": "yes"}, "retry_backoff"),
        ({"kwargs": [1, 2]}, "kwargs"),
        ({"kwargs": {"s": {1, 2}}}, "kwargs"),
        ({"kwargs": {"o": _Opaque()}}, "kwargs"),
    ],
    ids=repr,
)
def test_wrong_types_raise_type_error(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(TypeError, match=fragment):
        Job("fn", **options).validate()


def test_non_string_function_raises_type_error() -> None:
    with pytest.raises(TypeError, match="function"):
        Job(42).validate()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"timeout": -1}, "timeout"),
        ({"timeout": 0}, "timeout"),
        ({"timeout": math.inf}, "timeout"),
        ({"heartbeat": -0.5}, "heartbeat"),
        ({"heartbeat": math.nan}, "heartbeat"),
        ({"scheduled": -1}, "scheduled"),
        ({"retry_delay": -1}, "retry_delay"),
        ({"retries": -1}, "retries"),
        ({"ttl": -2}, "ttl"),
        ({"priority": 1001}, "priority"),
        ({"priority": -1001}, "priority"),
        ({"retry_backoff": -1.0}, "retry_backoff"),
    ],
    ids=repr,
)
def test_bad_values_raise_value_error(options: dict[str, Any], fragment: str) -> None:
    with pytest.raises(ValueError, match=fragment):
        Job("fn", **options).validate()


def test_empty_function_name_raises_value_error() -> None:
    with pytest.raises(ValueError, match="function"):
        Job("").validate()


# --- retry_delay_s ------------------------------------------------------------------

SAMPLES = 300


def _delays(job: Job) -> list[float]:
    """Sample ``job.retry_delay_s()`` many times."""
    return [job.retry_delay_s() for _ in range(SAMPLES)]


def test_retry_delay_without_backoff_is_exact() -> None:
    for attempts in (1, 2, 5):
        job = Job("fn", retry_delay=1.5, attempts=attempts)
        assert set(_delays(job)) == {1.5}


def test_zero_retry_delay_with_backoff_stays_zero() -> None:
    job = Job("fn", retry_delay=0, retry_backoff=True, attempts=4)
    assert set(_delays(job)) == {0}


@pytest.mark.parametrize(("attempts", "full"), [(1, 1.0), (2, 2.0), (3, 4.0), (5, 16.0)])
def test_backoff_doubles_and_jitters_into_upper_half(attempts: int, full: float) -> None:
    job = Job("fn", retry_delay=1.0, retry_backoff=True, attempts=attempts)
    delays = _delays(job)
    assert all(full / 2 <= d <= full for d in delays), (min(delays), max(delays))
    assert len(set(delays)) > 1, "backed-off delay is not jittered"
    # The samples spread over the range instead of clustering at one end.
    assert min(delays) < full * 0.65
    assert max(delays) > full * 0.85


def test_numeric_backoff_caps_the_delay() -> None:
    job = Job("fn", retry_delay=1.0, retry_backoff=3.0, attempts=10)  # uncapped: 512 s
    delays = _delays(job)
    assert all(1.5 <= d <= 3.0 for d in delays), (min(delays), max(delays))


def test_numeric_backoff_below_the_cap_still_doubles() -> None:
    job = Job("fn", retry_delay=1.0, retry_backoff=100.0, attempts=3)
    delays = _delays(job)
    assert all(2.0 <= d <= 4.0 for d in delays), (min(delays), max(delays))


# --- can_retry / lease_s / finished -------------------------------------------------


@pytest.mark.parametrize(
    ("retries", "attempts", "expected"),
    [(0, 1, False), (1, 1, True), (1, 2, False), (3, 1, True), (3, 3, True), (3, 4, False)],
)
def test_can_retry_allows_retries_plus_one_attempts(
    retries: int, attempts: int, expected: bool
) -> None:
    assert Job("fn", retries=retries, attempts=attempts).can_retry() is expected


def test_lease_s_uses_heartbeat_or_the_default() -> None:
    assert Job("fn", heartbeat=0).lease_s(7.0) == 7.0
    assert Job("fn", heartbeat=3).lease_s(7.0) == 3
    assert Job("fn").lease_s() == 30.0


@pytest.mark.parametrize(
    ("status", "finished"),
    [
        (Status.QUEUED, False),
        (Status.SCHEDULED, False),
        (Status.ACTIVE, False),
        (Status.ABORTING, False),
        (Status.COMPLETE, True),
        (Status.FAILED, True),
        (Status.ABORTED, True),
    ],
)
def test_finished_property(status: Status, finished: bool) -> None:
    assert Job("fn", status=status).finished is finished


def test_status_values_are_lowercase_strings() -> None:
    assert {str(s) for s in Status} == {
        "queued",
        "scheduled",
        "active",
        "aborting",
        "aborted",
        "failed",
        "complete",
    }


async def test_update_on_unbound_job_raises() -> None:
    with pytest.raises(RuntimeError, match="not bound"):
        await Job("fn").update(progress=0.5)


# --- ErrorInfo ----------------------------------------------------------------------


def _explode() -> None:
    raise ValueError("boom")


def test_error_info_from_raised_exception() -> None:
    try:
        _explode()
    except ValueError as exc:
        info = ErrorInfo.from_exception(exc)
    assert info.type == "ValueError"
    assert info.message == "boom"
    assert info.traceback.startswith("Traceback")
    assert "_explode" in info.traceback
    assert info.traceback.rstrip().endswith("ValueError: boom")
    assert str(info) == "ValueError: boom"


def test_error_info_from_unraised_exception_has_no_frames() -> None:
    info = ErrorInfo.from_exception(KeyError("k"))
    assert info.type == "KeyError"
    assert info.message == "'k'"
    assert "Traceback" not in info.traceback


def test_error_info_is_immutable() -> None:
    info = ErrorInfo("T", "m")
    assert info.traceback == ""
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.type = "X"  # type: ignore[misc]


def test_job_failed_and_aborted_carry_the_job() -> None:
    failed = Job("fn", status=Status.FAILED, error=ErrorInfo("ValueError", "bad"))
    exc = JobFailed(failed)
    assert exc.job is failed
    assert "ValueError: bad" in str(exc)
    aborted = Job("fn", status=Status.ABORTED, error=ErrorInfo("Aborted", "stop"))
    exc2 = JobAborted(aborted)
    assert exc2.job is aborted
    assert "stop" in str(exc2)


# --- CronJob ------------------------------------------------------------------------


async def _tick(ctx: dict[str, Any]) -> None:
    """A cron task that does nothing."""


@pytest.mark.parametrize("cron", ["* * * * * */2", "*/5 * * * *", "0 0 * * *"])
def test_cron_job_accepts_valid_expressions(cron: str) -> None:
    job = CronJob(_tick, cron=cron)
    assert job.cron == cron


@pytest.mark.parametrize("cron", ["not a cron", "61 * * * *", "* * * * * 99", ""])
def test_cron_job_rejects_invalid_expressions(cron: str) -> None:
    with pytest.raises(ValueError):
        CronJob(_tick, cron=cron)


def test_cron_next_tick_with_seconds_field() -> None:
    job = CronJob(_tick, cron="* * * * * */2")
    assert job.next_tick(100.0) == 102.0
    assert job.next_tick(101.5) == 102.0
    assert job.next_tick(102.0) == 104.0, "the next tick is strictly after"


def test_cron_next_tick_with_five_fields_is_minutely() -> None:
    job = CronJob(_tick, cron="*/5 * * * *")
    assert job.next_tick(0.0) == 300.0
    assert job.next_tick(299.9) == 300.0
