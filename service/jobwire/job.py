"""Jobs, their statuses, and the rules that move a job from one status to the next."""

import dataclasses
import enum
import math
import random
import time
import traceback
import uuid
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from jobwire.queue import Queue

PRIORITY_MIN, PRIORITY_MAX = -1000, 1000
# Queue names and job ids: no braces (they would break Redis hash tags), no slashes.
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,127}$"
JOB_ID_PATTERN = r"^[A-Za-z0-9_.:\-]{1,200}$"
DEFAULT_LEASE_S = 30.0
DEFAULT_TTL_S = 600  # also the Lua scripts' default for an absent ttl field


@dataclasses.dataclass(frozen=True, slots=True)
class Limits:
    """The one set of limits a job must keep, whatever the store and the path.

    Every store represents these exactly: integers fit PostgreSQL's ``integer`` columns
    (and ``attempts``, at most ``retries + 1``, does too), Redis's ``EXPIRE`` takes any
    ttl, seconds and Unix times are finite doubles far from overflow, strings carry no NUL
    (PostgreSQL's ``text`` refuses it), and JSON documents fit in one request.
    """

    function_chars: int = 200
    key_chars: int = 512
    retries_max: int = 1_000_000_000
    ttl_max: int = 2**31 - 1  # about 68 years
    seconds_max: float = 1e9  # timeout, heartbeat, retry_delay, retry_backoff: ~31 years
    scheduled_max: float = 253_402_300_799.0  # 9999-12-31T23:59:59Z
    json_bytes: int = 512 * 1024  # kwargs, meta and result, each as JSON


LIMITS = Limits()


class Status(enum.StrEnum):
    """Where a job is in its lifecycle."""

    QUEUED = "queued"
    SCHEDULED = "scheduled"
    ACTIVE = "active"
    ABORTING = "aborting"
    ABORTED = "aborted"
    FAILED = "failed"
    COMPLETE = "complete"


FINISHED = frozenset({Status.COMPLETE, Status.FAILED, Status.ABORTED})
LIVE = frozenset({Status.QUEUED, Status.SCHEDULED, Status.ACTIVE, Status.ABORTING})


@dataclasses.dataclass(frozen=True, slots=True)
class ErrorInfo:
    """Why a job failed or was aborted.

    Attributes:
        type: The exception class name (``"Aborted"`` for an abort, ``"LeaseExpired"``
            when the worker went silent).
        message: The exception message.
        traceback: The formatted traceback, empty when there is none.
    """

    type: str
    message: str
    traceback: str = ""

    @classmethod
    def from_exception(cls, exc: BaseException) -> "ErrorInfo":
        """Capture an exception's type, message and traceback."""
        return cls(type(exc).__name__, str(exc), "".join(traceback.format_exception(exc)))

    def __str__(self) -> str:
        return f"{self.type}: {self.message}"


@dataclasses.dataclass(slots=True)
class Job:
    """One unit of work: a function name, its keyword arguments, and its options.

    Times are Unix epoch seconds (``0`` means "not yet"); durations are seconds.

    Attributes:
        function: Name of the task function a worker runs.
        kwargs: Keyword arguments for the function; must be JSON-serializable.
        queue: Name of the queue the job belongs to.
        id: Unique job id, generated when not given.
        key: Deduplication key: while a job with this key is queued, scheduled or
            active, enqueueing another with the same key creates nothing.
        concurrency_key: Groups jobs for the queue's per-key limits (a tenant id, say):
            ``max_active_per_key`` and ``rate_per_key`` count jobs of one key.
        status: Current lifecycle status.
        priority: Higher runs first, from -1000 to 1000 (default 0).
        timeout: Seconds before the worker cancels the task; ``None`` for no limit.
        heartbeat: Lease length in seconds for this job: a job whose worker is silent
            that long is retried or failed. ``0`` uses the queue's default lease (30 s).
        retries: Retries allowed after the first attempt (``retries + 1`` attempts).
        attempts: Attempts started so far.
        ttl: Seconds a finished job stays readable; ``0`` keeps it, ``-1`` deletes it at once.
        scheduled: Unix time before which the job does not start; ``0`` for now.
        retry_delay: Seconds to wait before a retry.
        retry_backoff: ``True`` doubles ``retry_delay`` at each retry; a number also caps
            the delay at that many seconds. Backed-off delays are jittered into
            ``[delay / 2, delay]``.
        progress: Progress reported by the task, from 0 to 1.
        meta: Free-form metadata the task may update while it runs.
        result: The function's return value once complete.
        error: Why the job failed or was aborted.
        created: When the job was first enqueued.
        queued: When the job last entered ``queued``.
        started: When its latest attempt started.
        completed: When it finished.
        touched: When anything last changed.
        worker: Id of the worker that holds (or last held) the job.
        lease: Token of the current attempt's lease (internal to workers).
    """

    function: str
    kwargs: dict[str, Any] = dataclasses.field(default_factory=dict)
    queue: str = "default"
    id: str = dataclasses.field(default_factory=lambda: uuid.uuid4().hex)
    key: str | None = None
    concurrency_key: str | None = None
    status: Status = Status.QUEUED
    priority: int = 0
    timeout: float | None = None
    heartbeat: float = 0
    retries: int = 0
    attempts: int = 0
    ttl: int = DEFAULT_TTL_S
    scheduled: float = 0
    retry_delay: float = 0.0
    retry_backoff: bool | float = False
    progress: float = 0.0
    meta: dict[str, Any] = dataclasses.field(default_factory=dict)
    result: Any = None
    error: ErrorInfo | None = None
    created: float = 0
    queued: float = 0
    started: float = 0
    completed: float = 0
    touched: float = 0
    worker: str | None = None
    lease: str | None = dataclasses.field(default=None, repr=False)
    _owner: "Queue | None" = dataclasses.field(default=None, repr=False, compare=False)

    @property
    def finished(self) -> bool:
        """Whether the job reached complete, failed or aborted."""
        return self.status in FINISHED

    def lease_s(self, default_s: float = DEFAULT_LEASE_S) -> float:
        """Seconds a worker may stay silent before the job counts as stuck."""
        return self.heartbeat if self.heartbeat > 0 else default_s

    def retry_delay_s(self) -> float:
        """Delay before the next retry, given the attempts made so far."""
        if not self.retry_backoff or self.retry_delay <= 0:
            return self.retry_delay
        delay = self.retry_delay * 2 ** max(self.attempts - 1, 0)
        if not isinstance(self.retry_backoff, bool):
            delay = min(delay, float(self.retry_backoff))
        return random.uniform(delay / 2, delay)

    def can_retry(self) -> bool:
        """Whether another attempt is allowed after the current one failed."""
        return self.attempts <= self.retries

    async def refresh(self) -> "Job":
        """Reload this job's fields from the queue and return it."""
        fresh = await self._queue().job(self.id)
        for field in dataclasses.fields(self):
            if field.name != "_owner":
                setattr(self, field.name, getattr(fresh, field.name))
        return self

    async def update(
        self, *, progress: float | None = None, meta: dict[str, Any] | None = None
    ) -> None:
        """Record progress and/or metadata from inside the running task.

        Args:
            progress: Fraction done, from 0 to 1.
            meta: Keys to merge into ``job.meta``.

        Raises:
            StaleLease: This attempt no longer owns the job.
        """
        await self._queue().update(self, progress=progress, meta=meta)

    def _queue(self) -> "Queue":
        if self._owner is None:
            raise RuntimeError("this Job is not bound to a Queue; fetch it with queue.job()")
        return self._owner

    def to_dict(self, *, with_lease: bool = False) -> dict[str, Any]:
        """The job as JSON-ready data (the lease token only when asked for)."""
        data = {f.name: getattr(self, f.name) for f in _PUBLIC_FIELDS}
        data["error"] = dataclasses.asdict(self.error) if self.error else None
        if with_lease:
            data["lease"] = self.lease
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Job":
        """Rebuild a job from ``to_dict`` output (unknown keys are ignored)."""
        fields = {f.name: data[f.name] for f in _PUBLIC_FIELDS if f.name in data}
        error = data.get("error")
        fields["error"] = ErrorInfo(**error) if error else None
        fields["status"] = Status(fields.get("status", Status.QUEUED))
        return cls(lease=data.get("lease"), **fields)

    def validate(self) -> None:
        """Check every option against ``LIMITS``, raising ``TypeError``/``ValueError``
        (whose message names the field) on a bad one. Every path that stores a job calls
        this first, so a job out of range is never stored."""
        check_text("function", self.function, LIMITS.function_chars)
        _check_type("kwargs", self.kwargs, dict)
        if self.key is not None:
            check_text("key", self.key, LIMITS.key_chars)
        if self.concurrency_key is not None:
            check_text("concurrency_key", self.concurrency_key, LIMITS.key_chars)
        check_text("id", self.id, 200)
        if "\x00" in self.queue:
            raise ValueError("queue must not contain NUL characters")
        seconds = LIMITS.seconds_max
        _check_number("timeout", self.timeout, allow_none=True, positive=True, maximum=seconds)
        _check_number("heartbeat", self.heartbeat, maximum=seconds)
        _check_number("scheduled", self.scheduled, maximum=LIMITS.scheduled_max)
        _check_number("retry_delay", self.retry_delay, maximum=seconds)
        _check_int("retries", self.retries, minimum=0, maximum=LIMITS.retries_max)
        _check_int("ttl", self.ttl, minimum=-1, maximum=LIMITS.ttl_max)
        _check_int("priority", self.priority, minimum=PRIORITY_MIN, maximum=PRIORITY_MAX)
        if not isinstance(self.retry_backoff, bool):
            _check_number("retry_backoff", self.retry_backoff, maximum=seconds)
        check_json("kwargs", self.kwargs)
        if self.meta:
            check_json("meta", self.meta)


_PUBLIC_FIELDS = tuple(f for f in dataclasses.fields(Job) if f.name not in ("lease", "_owner"))


def now() -> float:
    """Current Unix time in seconds."""
    return time.time()


def check_text(name: str, value: object, max_chars: int) -> None:
    """A non-empty string of at most ``max_chars`` characters without NUL.

    Raises:
        TypeError: Not a string.
        ValueError: Empty, too long, or with a NUL character.
    """
    _check_type(name, value, str)
    assert isinstance(value, str)
    if not value:
        raise ValueError(f"{name} must be a non-empty string")
    if len(value) > max_chars:
        raise ValueError(f"{name} must be at most {max_chars} characters, got {len(value)}")
    if "\x00" in value:
        raise ValueError(f"{name} must not contain NUL characters")


def check_json(name: str, value: object) -> bytes:
    """``value`` as JSON, within ``LIMITS.json_bytes`` (integers within 64 bits).

    Returns:
        The JSON text.

    Raises:
        TypeError: Not JSON-serializable.
        ValueError: Larger than the limit.
    """
    try:
        text = orjson.dumps(value)
    except TypeError as exc:
        raise TypeError(f"{name} must be JSON-serializable: {exc}") from None
    if len(text) > LIMITS.json_bytes:
        raise ValueError(f"{name} must be at most {LIMITS.json_bytes} bytes as JSON, "
                         f"got {len(text)}")  # fmt: skip
    return text


def _check_type(name: str, value: object, kind: type | tuple[type, ...]) -> None:
    if not isinstance(value, kind):
        raise TypeError(f"{name} must be {_kind_name(kind)}, not {type(value).__name__}")


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join("None" if k is type(None) else k.__name__ for k in kinds)


def _check_number(
    name: str,
    value: object,
    *,
    allow_none: bool = False,
    positive: bool = False,
    maximum: float = LIMITS.seconds_max,
) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise TypeError(f"{name} must be a number of seconds, not {type(value).__name__}")
    try:
        number = float(value)
    except OverflowError:
        number = math.inf
    if not math.isfinite(number) or number < 0 or (positive and number == 0) or number > maximum:
        bound = "> 0" if positive else ">= 0"
        raise ValueError(f"{name} must be a finite number {bound} and <= {maximum:g}, "
                         f"got {value!r}")  # fmt: skip


def _check_int(name: str, value: object, *, minimum: int, maximum: int | None = None) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{name} must be an int, not {type(value).__name__}")
    if value < minimum or (maximum is not None and value > maximum):
        upper = f" and <= {maximum}" if maximum is not None else ""
        raise ValueError(f"{name} must be >= {minimum}{upper}, got {value}")
