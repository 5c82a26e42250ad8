"""Flow control: a queue's limits and pause state, and the filters bulk operations take.

Limits are stored with the queue, so every worker of every language sees the same ones,
and each store enforces them where it leases jobs (atomically: no race between workers can
exceed one). A job held back by a limit stays queued and starts as soon as the limit
allows; jobs that no limit holds back still run (no head-of-line blocking).
"""

import dataclasses
import enum
import math
from typing import Any

import orjson

from jobwire.job import LIMITS, Job, Status, check_text

LIMIT_MAX = 1_000_000_000  # concurrency and rate limits, jobs
PERIOD_MAX_S = 86_400.0  # a rate's window: at most a day
MAX_FUNCTION_LIMITS = 1000  # functions with limits of their own, per queue
BULK_CHUNK = 500  # jobs one store call of a bulk operation changes at most


@dataclasses.dataclass(frozen=True, slots=True)
class Rate:
    """At most ``limit`` jobs start in any window of ``period_s`` seconds (a sliding
    window: no burst beyond ``limit`` at any moment)."""

    limit: int
    period_s: float = 1.0

    def validate(self, name: str) -> None:
        """Raise ``TypeError``/``ValueError`` naming ``name`` when out of range."""
        _check_limit(f"{name}.limit", self.limit)
        period = self.period_s
        if isinstance(period, bool) or not isinstance(period, int | float):
            raise TypeError(f"{name}.period_s must be a number of seconds")
        if not (math.isfinite(period) and 0 < period <= PERIOD_MAX_S):
            raise ValueError(f"{name}.period_s must be > 0 and <= {PERIOD_MAX_S:g}, got {period}")


@dataclasses.dataclass(frozen=True, slots=True)
class FunctionLimits:
    """Limits on the jobs of one function, across every worker."""

    max_active: int | None = None
    rate: Rate | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class QueueSettings:
    """A queue's limits, across every worker (``None``: no limit).

    Attributes:
        max_active: Jobs of the queue active at once.
        max_active_per_key: Jobs active at once per ``concurrency_key`` (jobs without a
            key are not counted).
        rate: Jobs of the queue started per window.
        rate_per_key: Jobs started per window per ``concurrency_key``.
        functions: Limits per function name.
    """

    max_active: int | None = None
    max_active_per_key: int | None = None
    rate: Rate | None = None
    rate_per_key: Rate | None = None
    functions: dict[str, FunctionLimits] = dataclasses.field(default_factory=dict)

    @property
    def limited(self) -> bool:
        """Whether any limit is set (stores take a faster path when none is)."""
        return self != QueueSettings()

    def validate(self) -> None:
        """Check every limit, raising ``TypeError``/``ValueError`` naming the field."""
        for name in ("max_active", "max_active_per_key"):
            if getattr(self, name) is not None:
                _check_limit(name, getattr(self, name))
        for name in ("rate", "rate_per_key"):
            rate = getattr(self, name)
            if rate is not None:
                _check_type(name, rate, Rate)
                rate.validate(name)
        _check_type("functions", self.functions, dict)
        if len(self.functions) > MAX_FUNCTION_LIMITS:
            raise ValueError(f"functions: at most {MAX_FUNCTION_LIMITS}, got {len(self.functions)}")
        for function, limits in self.functions.items():
            check_text("functions key", function, LIMITS.function_chars)
            _check_type(f"functions.{function}", limits, FunctionLimits)
            if limits.max_active is not None:
                _check_limit(f"functions.{function}.max_active", limits.max_active)
            if limits.rate is not None:
                _check_type(f"functions.{function}.rate", limits.rate, Rate)
                limits.rate.validate(f"functions.{function}.rate")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data, without unset limits (the shape REST and the stores use)."""
        data: dict[str, Any] = _drop_none(dataclasses.asdict(self))
        return data

    def to_json(self) -> str:
        """``to_dict`` as JSON text (how the stores keep it)."""
        return orjson.dumps(self.to_dict()).decode()

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "QueueSettings":
        """Rebuild settings from ``to_dict`` output.

        Raises:
            TypeError: A field has the wrong shape.
            ValueError: Unknown fields, or a limit out of range.
        """
        _check_type("settings", data, dict)
        _no_unknown("settings", data, cls)
        functions = data.get("functions") or {}
        _check_type("functions", functions, dict)
        settings = cls(
            max_active=data.get("max_active"),
            max_active_per_key=data.get("max_active_per_key"),
            rate=_rate(data.get("rate"), "rate"),
            rate_per_key=_rate(data.get("rate_per_key"), "rate_per_key"),
            functions={name: _function_limits(name, f) for name, f in functions.items()},
        )
        settings.validate()
        return settings

    @classmethod
    def from_json(cls, text: str | bytes | None) -> "QueueSettings":
        """Settings as a store keeps them (empty or ``None``: no limits)."""
        return cls.from_dict(orjson.loads(text)) if text else cls()


class BulkAction(enum.StrEnum):
    """What a bulk operation does to each job its filter matches."""

    RETRY = "retry"  # finished jobs queue again (live ones are skipped)
    DELETE = "delete"  # removed whatever their status
    ABORT = "abort"  # live jobs: queued/scheduled ones end aborted, active ones abort


@dataclasses.dataclass(frozen=True, slots=True)
class JobFilter:
    """Which jobs of a queue a bulk operation (or a listing) takes; unset fields match all.

    Attributes:
        status: Only jobs in this status.
        function: Only jobs of this function.
        key_prefix: Only jobs whose dedup ``key`` starts with this.
        enqueued_before: Only jobs created before this Unix time.
        enqueued_after: Only jobs created at or after this Unix time.
    """

    status: Status | None = None
    function: str | None = None
    key_prefix: str | None = None
    enqueued_before: float | None = None
    enqueued_after: float | None = None

    def validate(self) -> None:
        """Raise ``TypeError``/``ValueError`` naming the field when one is malformed."""
        if self.status is not None:
            Status(self.status)
        if self.function is not None:
            check_text("function", self.function, LIMITS.function_chars)
        if self.key_prefix is not None:
            check_text("key_prefix", self.key_prefix, LIMITS.key_chars)
        for name in ("enqueued_before", "enqueued_after"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise TypeError(f"{name} must be a Unix time in seconds")
            if not (math.isfinite(value) and 0 <= value <= LIMITS.scheduled_max):
                raise ValueError(f"{name} must be a Unix time in 0..{LIMITS.scheduled_max:g}")

    def matches(self, job: Job) -> bool:
        """Whether ``job`` passes the filter (stores that cannot filter natively use it)."""
        return (
            (self.status is None or job.status == self.status)
            and (self.function is None or job.function == self.function)
            and (self.key_prefix is None or (job.key or "").startswith(self.key_prefix))
            and (self.enqueued_before is None or job.created < self.enqueued_before)
            and (self.enqueued_after is None or job.created >= self.enqueued_after)
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready data without unset fields."""
        data: dict[str, Any] = _drop_none(dataclasses.asdict(self))
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "JobFilter":
        """Rebuild a filter from ``to_dict`` output.

        Raises:
            TypeError: A field has the wrong type.
            ValueError: Unknown fields, or a value out of range.
        """
        _check_type("filter", data, dict)
        _no_unknown("filter", data, cls)
        status = data.get("status")
        where = cls(**{**data, "status": Status(status) if status is not None else None})
        where.validate()
        return where


def _check_limit(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if not 1 <= value <= LIMIT_MAX:
        raise ValueError(f"{name} must be >= 1 and <= {LIMIT_MAX}, got {value}")


def _check_type(name: str, value: object, kind: type) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {kind.__name__}, not {type(value).__name__}")


def _no_unknown(name: str, data: dict[str, Any], cls: type) -> None:
    unknown = set(data) - {f.name for f in dataclasses.fields(cls)}
    if unknown:
        raise ValueError(f"{name}: unknown fields {sorted(unknown)}")


def _rate(data: Any, name: str) -> Rate | None:
    if data is None:
        return None
    _check_type(name, data, dict)
    _no_unknown(name, data, Rate)
    if "limit" not in data:
        raise ValueError(f"{name}.limit is required")
    return Rate(limit=data["limit"], period_s=data.get("period_s", 1.0))


def _function_limits(function: str, data: Any) -> FunctionLimits:
    name = f"functions.{function}"
    _check_type(name, data, dict)
    _no_unknown(name, data, FunctionLimits)
    return FunctionLimits(data.get("max_active"), _rate(data.get("rate"), f"{name}.rate"))


def _drop_none(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _drop_none(v) for k, v in value.items() if v is not None}
    return value
