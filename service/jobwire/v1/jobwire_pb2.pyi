from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Status(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    STATUS_UNSPECIFIED: _ClassVar[Status]
    STATUS_QUEUED: _ClassVar[Status]
    STATUS_SCHEDULED: _ClassVar[Status]
    STATUS_ACTIVE: _ClassVar[Status]
    STATUS_ABORTING: _ClassVar[Status]
    STATUS_ABORTED: _ClassVar[Status]
    STATUS_FAILED: _ClassVar[Status]
    STATUS_COMPLETE: _ClassVar[Status]

class LeaseState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LEASE_STATE_UNSPECIFIED: _ClassVar[LeaseState]
    LEASE_STATE_ACTIVE: _ClassVar[LeaseState]
    LEASE_STATE_ABORTING: _ClassVar[LeaseState]
    LEASE_STATE_LOST: _ClassVar[LeaseState]

class BulkAction(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BULK_ACTION_UNSPECIFIED: _ClassVar[BulkAction]
    BULK_ACTION_RETRY: _ClassVar[BulkAction]
    BULK_ACTION_DELETE: _ClassVar[BulkAction]
    BULK_ACTION_ABORT: _ClassVar[BulkAction]
STATUS_UNSPECIFIED: Status
STATUS_QUEUED: Status
STATUS_SCHEDULED: Status
STATUS_ACTIVE: Status
STATUS_ABORTING: Status
STATUS_ABORTED: Status
STATUS_FAILED: Status
STATUS_COMPLETE: Status
LEASE_STATE_UNSPECIFIED: LeaseState
LEASE_STATE_ACTIVE: LeaseState
LEASE_STATE_ABORTING: LeaseState
LEASE_STATE_LOST: LeaseState
BULK_ACTION_UNSPECIFIED: BulkAction
BULK_ACTION_RETRY: BulkAction
BULK_ACTION_DELETE: BulkAction
BULK_ACTION_ABORT: BulkAction

class JobError(_message.Message):
    __slots__ = ("type", "message", "traceback")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    TRACEBACK_FIELD_NUMBER: _ClassVar[int]
    type: str
    message: str
    traceback: str
    def __init__(self, type: _Optional[str] = ..., message: _Optional[str] = ..., traceback: _Optional[str] = ...) -> None: ...

class Job(_message.Message):
    __slots__ = ("id", "queue", "function", "kwargs_json", "status", "key", "priority", "timeout", "heartbeat", "retries", "attempts", "ttl", "scheduled", "retry_delay", "retry_backoff", "retry_backoff_cap", "progress", "meta_json", "result_json", "error", "created", "queued", "started", "completed", "touched", "worker", "lease", "concurrency_key")
    ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    ATTEMPTS_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_CAP_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    META_JSON_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    CREATED_FIELD_NUMBER: _ClassVar[int]
    QUEUED_FIELD_NUMBER: _ClassVar[int]
    STARTED_FIELD_NUMBER: _ClassVar[int]
    COMPLETED_FIELD_NUMBER: _ClassVar[int]
    TOUCHED_FIELD_NUMBER: _ClassVar[int]
    WORKER_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    id: str
    queue: str
    function: str
    kwargs_json: str
    status: Status
    key: str
    priority: int
    timeout: float
    heartbeat: float
    retries: int
    attempts: int
    ttl: int
    scheduled: float
    retry_delay: float
    retry_backoff: bool
    retry_backoff_cap: float
    progress: float
    meta_json: str
    result_json: str
    error: JobError
    created: float
    queued: float
    started: float
    completed: float
    touched: float
    worker: str
    lease: str
    concurrency_key: str
    def __init__(self, id: _Optional[str] = ..., queue: _Optional[str] = ..., function: _Optional[str] = ..., kwargs_json: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., key: _Optional[str] = ..., priority: _Optional[int] = ..., timeout: _Optional[float] = ..., heartbeat: _Optional[float] = ..., retries: _Optional[int] = ..., attempts: _Optional[int] = ..., ttl: _Optional[int] = ..., scheduled: _Optional[float] = ..., retry_delay: _Optional[float] = ..., retry_backoff: _Optional[bool] = ..., retry_backoff_cap: _Optional[float] = ..., progress: _Optional[float] = ..., meta_json: _Optional[str] = ..., result_json: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., created: _Optional[float] = ..., queued: _Optional[float] = ..., started: _Optional[float] = ..., completed: _Optional[float] = ..., touched: _Optional[float] = ..., worker: _Optional[str] = ..., lease: _Optional[str] = ..., concurrency_key: _Optional[str] = ...) -> None: ...

class JobSpec(_message.Message):
    __slots__ = ("function", "kwargs_json", "id", "key", "timeout", "retries", "ttl", "heartbeat", "scheduled", "retry_delay", "retry_backoff", "retry_backoff_cap", "priority", "concurrency_key")
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    KWARGS_JSON_FIELD_NUMBER: _ClassVar[int]
    ID_FIELD_NUMBER: _ClassVar[int]
    KEY_FIELD_NUMBER: _ClassVar[int]
    TIMEOUT_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    TTL_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    SCHEDULED_FIELD_NUMBER: _ClassVar[int]
    RETRY_DELAY_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_FIELD_NUMBER: _ClassVar[int]
    RETRY_BACKOFF_CAP_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    CONCURRENCY_KEY_FIELD_NUMBER: _ClassVar[int]
    function: str
    kwargs_json: str
    id: str
    key: str
    timeout: float
    retries: int
    ttl: int
    heartbeat: float
    scheduled: float
    retry_delay: float
    retry_backoff: bool
    retry_backoff_cap: float
    priority: int
    concurrency_key: str
    def __init__(self, function: _Optional[str] = ..., kwargs_json: _Optional[str] = ..., id: _Optional[str] = ..., key: _Optional[str] = ..., timeout: _Optional[float] = ..., retries: _Optional[int] = ..., ttl: _Optional[int] = ..., heartbeat: _Optional[float] = ..., scheduled: _Optional[float] = ..., retry_delay: _Optional[float] = ..., retry_backoff: _Optional[bool] = ..., retry_backoff_cap: _Optional[float] = ..., priority: _Optional[int] = ..., concurrency_key: _Optional[str] = ...) -> None: ...

class EnqueueRequest(_message.Message):
    __slots__ = ("queue", "job")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    queue: str
    job: JobSpec
    def __init__(self, queue: _Optional[str] = ..., job: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class EnqueueReply(_message.Message):
    __slots__ = ("job", "duplicate")
    JOB_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    job: Job
    duplicate: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class EnqueueBatchRequest(_message.Message):
    __slots__ = ("queue", "jobs")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOBS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    jobs: _containers.RepeatedCompositeFieldContainer[JobSpec]
    def __init__(self, queue: _Optional[str] = ..., jobs: _Optional[_Iterable[_Union[JobSpec, _Mapping]]] = ...) -> None: ...

class EnqueueBatchReply(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[EnqueueReply]
    def __init__(self, jobs: _Optional[_Iterable[_Union[EnqueueReply, _Mapping]]] = ...) -> None: ...

class ApplyRequest(_message.Message):
    __slots__ = ("queue", "job")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_FIELD_NUMBER: _ClassVar[int]
    queue: str
    job: JobSpec
    def __init__(self, queue: _Optional[str] = ..., job: _Optional[_Union[JobSpec, _Mapping]] = ...) -> None: ...

class ApplyReply(_message.Message):
    __slots__ = ("job", "duplicate")
    JOB_FIELD_NUMBER: _ClassVar[int]
    DUPLICATE_FIELD_NUMBER: _ClassVar[int]
    job: Job
    duplicate: bool
    def __init__(self, job: _Optional[_Union[Job, _Mapping]] = ..., duplicate: _Optional[bool] = ...) -> None: ...

class GetJobRequest(_message.Message):
    __slots__ = ("job_id", "queue", "wait_s")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    queue: str
    wait_s: float
    def __init__(self, job_id: _Optional[str] = ..., queue: _Optional[str] = ..., wait_s: _Optional[float] = ...) -> None: ...

class WatchJobRequest(_message.Message):
    __slots__ = ("job_id", "queue")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    queue: str
    def __init__(self, job_id: _Optional[str] = ..., queue: _Optional[str] = ...) -> None: ...

class AbortJobRequest(_message.Message):
    __slots__ = ("job_id", "queue", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    queue: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., queue: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class RetryJobRequest(_message.Message):
    __slots__ = ("job_id", "queue")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    queue: str
    def __init__(self, job_id: _Optional[str] = ..., queue: _Optional[str] = ...) -> None: ...

class DeleteJobRequest(_message.Message):
    __slots__ = ("job_id", "queue")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    queue: str
    def __init__(self, job_id: _Optional[str] = ..., queue: _Optional[str] = ...) -> None: ...

class DeleteJobReply(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListJobsRequest(_message.Message):
    __slots__ = ("queue", "status", "function", "page_size", "page_token", "key_prefix")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    PAGE_SIZE_FIELD_NUMBER: _ClassVar[int]
    PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    queue: str
    status: Status
    function: str
    page_size: int
    page_token: str
    key_prefix: str
    def __init__(self, queue: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., function: _Optional[str] = ..., page_size: _Optional[int] = ..., page_token: _Optional[str] = ..., key_prefix: _Optional[str] = ...) -> None: ...

class ListJobsReply(_message.Message):
    __slots__ = ("jobs", "next_page_token")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_PAGE_TOKEN_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_page_token: str
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_page_token: _Optional[str] = ...) -> None: ...

class GetQueueRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class WorkerInfo(_message.Message):
    __slots__ = ("id", "seen", "info_json")
    ID_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    id: str
    seen: float
    info_json: str
    def __init__(self, id: _Optional[str] = ..., seen: _Optional[float] = ..., info_json: _Optional[str] = ...) -> None: ...

class QueueInfo(_message.Message):
    __slots__ = ("name", "counts", "workers", "finished_per_s", "paused", "settings")
    class CountsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: int
        def __init__(self, key: _Optional[str] = ..., value: _Optional[int] = ...) -> None: ...
    NAME_FIELD_NUMBER: _ClassVar[int]
    COUNTS_FIELD_NUMBER: _ClassVar[int]
    WORKERS_FIELD_NUMBER: _ClassVar[int]
    FINISHED_PER_S_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    name: str
    counts: _containers.ScalarMap[str, int]
    workers: _containers.RepeatedCompositeFieldContainer[WorkerInfo]
    finished_per_s: float
    paused: bool
    settings: QueueSettings
    def __init__(self, name: _Optional[str] = ..., counts: _Optional[_Mapping[str, int]] = ..., workers: _Optional[_Iterable[_Union[WorkerInfo, _Mapping]]] = ..., finished_per_s: _Optional[float] = ..., paused: _Optional[bool] = ..., settings: _Optional[_Union[QueueSettings, _Mapping]] = ...) -> None: ...

class Rate(_message.Message):
    __slots__ = ("limit", "period_s")
    LIMIT_FIELD_NUMBER: _ClassVar[int]
    PERIOD_S_FIELD_NUMBER: _ClassVar[int]
    limit: int
    period_s: float
    def __init__(self, limit: _Optional[int] = ..., period_s: _Optional[float] = ...) -> None: ...

class FunctionLimits(_message.Message):
    __slots__ = ("max_active", "rate")
    MAX_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    max_active: int
    rate: Rate
    def __init__(self, max_active: _Optional[int] = ..., rate: _Optional[_Union[Rate, _Mapping]] = ...) -> None: ...

class QueueSettings(_message.Message):
    __slots__ = ("max_active", "max_active_per_key", "rate", "rate_per_key", "functions")
    class FunctionsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: FunctionLimits
        def __init__(self, key: _Optional[str] = ..., value: _Optional[_Union[FunctionLimits, _Mapping]] = ...) -> None: ...
    MAX_ACTIVE_FIELD_NUMBER: _ClassVar[int]
    MAX_ACTIVE_PER_KEY_FIELD_NUMBER: _ClassVar[int]
    RATE_FIELD_NUMBER: _ClassVar[int]
    RATE_PER_KEY_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    max_active: int
    max_active_per_key: int
    rate: Rate
    rate_per_key: Rate
    functions: _containers.MessageMap[str, FunctionLimits]
    def __init__(self, max_active: _Optional[int] = ..., max_active_per_key: _Optional[int] = ..., rate: _Optional[_Union[Rate, _Mapping]] = ..., rate_per_key: _Optional[_Union[Rate, _Mapping]] = ..., functions: _Optional[_Mapping[str, FunctionLimits]] = ...) -> None: ...

class PauseQueueRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class ResumeQueueRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class QueueState(_message.Message):
    __slots__ = ("queue", "paused")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    queue: str
    paused: bool
    def __init__(self, queue: _Optional[str] = ..., paused: _Optional[bool] = ...) -> None: ...

class GetQueueSettingsRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class PutQueueSettingsRequest(_message.Message):
    __slots__ = ("queue", "settings")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    settings: QueueSettings
    def __init__(self, queue: _Optional[str] = ..., settings: _Optional[_Union[QueueSettings, _Mapping]] = ...) -> None: ...

class QueueSettingsReply(_message.Message):
    __slots__ = ("queue", "paused", "settings")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    PAUSED_FIELD_NUMBER: _ClassVar[int]
    SETTINGS_FIELD_NUMBER: _ClassVar[int]
    queue: str
    paused: bool
    settings: QueueSettings
    def __init__(self, queue: _Optional[str] = ..., paused: _Optional[bool] = ..., settings: _Optional[_Union[QueueSettings, _Mapping]] = ...) -> None: ...

class JobFilter(_message.Message):
    __slots__ = ("status", "function", "key_prefix", "enqueued_before", "enqueued_after")
    STATUS_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    KEY_PREFIX_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_BEFORE_FIELD_NUMBER: _ClassVar[int]
    ENQUEUED_AFTER_FIELD_NUMBER: _ClassVar[int]
    status: Status
    function: str
    key_prefix: str
    enqueued_before: float
    enqueued_after: float
    def __init__(self, status: _Optional[_Union[Status, str]] = ..., function: _Optional[str] = ..., key_prefix: _Optional[str] = ..., enqueued_before: _Optional[float] = ..., enqueued_after: _Optional[float] = ...) -> None: ...

class BulkJobsRequest(_message.Message):
    __slots__ = ("queue", "action", "filter")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    ACTION_FIELD_NUMBER: _ClassVar[int]
    FILTER_FIELD_NUMBER: _ClassVar[int]
    queue: str
    action: BulkAction
    filter: JobFilter
    def __init__(self, queue: _Optional[str] = ..., action: _Optional[_Union[BulkAction, str]] = ..., filter: _Optional[_Union[JobFilter, _Mapping]] = ...) -> None: ...

class BulkJobsReply(_message.Message):
    __slots__ = ("count",)
    COUNT_FIELD_NUMBER: _ClassVar[int]
    count: int
    def __init__(self, count: _Optional[int] = ...) -> None: ...

class ListQueuesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListQueuesReply(_message.Message):
    __slots__ = ("queues",)
    QUEUES_FIELD_NUMBER: _ClassVar[int]
    queues: _containers.RepeatedCompositeFieldContainer[QueueInfo]
    def __init__(self, queues: _Optional[_Iterable[_Union[QueueInfo, _Mapping]]] = ...) -> None: ...

class LeaseRequest(_message.Message):
    __slots__ = ("queue", "worker_id", "functions", "max_jobs", "wait_s", "lease_s")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    MAX_JOBS_FIELD_NUMBER: _ClassVar[int]
    WAIT_S_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    queue: str
    worker_id: str
    functions: _containers.RepeatedScalarFieldContainer[str]
    max_jobs: int
    wait_s: float
    lease_s: float
    def __init__(self, queue: _Optional[str] = ..., worker_id: _Optional[str] = ..., functions: _Optional[_Iterable[str]] = ..., max_jobs: _Optional[int] = ..., wait_s: _Optional[float] = ..., lease_s: _Optional[float] = ...) -> None: ...

class LeaseReply(_message.Message):
    __slots__ = ("jobs", "next_due_s")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    NEXT_DUE_S_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    next_due_s: float
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ..., next_due_s: _Optional[float] = ...) -> None: ...

class LeaseRef(_message.Message):
    __slots__ = ("job_id", "lease", "progress", "meta_json")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    META_JSON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease: str
    progress: float
    meta_json: str
    def __init__(self, job_id: _Optional[str] = ..., lease: _Optional[str] = ..., progress: _Optional[float] = ..., meta_json: _Optional[str] = ...) -> None: ...

class HeartbeatRequest(_message.Message):
    __slots__ = ("queue", "leases", "lease_s")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    queue: str
    leases: _containers.RepeatedCompositeFieldContainer[LeaseRef]
    lease_s: float
    def __init__(self, queue: _Optional[str] = ..., leases: _Optional[_Iterable[_Union[LeaseRef, _Mapping]]] = ..., lease_s: _Optional[float] = ...) -> None: ...

class HeartbeatReply(_message.Message):
    __slots__ = ("states",)
    STATES_FIELD_NUMBER: _ClassVar[int]
    states: _containers.RepeatedScalarFieldContainer[LeaseState]
    def __init__(self, states: _Optional[_Iterable[_Union[LeaseState, str]]] = ...) -> None: ...

class CompleteRequest(_message.Message):
    __slots__ = ("queue", "job_id", "lease", "result_json", "run_s")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    RUN_S_FIELD_NUMBER: _ClassVar[int]
    queue: str
    job_id: str
    lease: str
    result_json: str
    run_s: float
    def __init__(self, queue: _Optional[str] = ..., job_id: _Optional[str] = ..., lease: _Optional[str] = ..., result_json: _Optional[str] = ..., run_s: _Optional[float] = ...) -> None: ...

class FailRequest(_message.Message):
    __slots__ = ("queue", "job_id", "lease", "error", "no_retry", "run_s")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    NO_RETRY_FIELD_NUMBER: _ClassVar[int]
    RUN_S_FIELD_NUMBER: _ClassVar[int]
    queue: str
    job_id: str
    lease: str
    error: JobError
    no_retry: bool
    run_s: float
    def __init__(self, queue: _Optional[str] = ..., job_id: _Optional[str] = ..., lease: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., no_retry: _Optional[bool] = ..., run_s: _Optional[float] = ...) -> None: ...

class Outcome(_message.Message):
    __slots__ = ("job_id", "lease", "status", "result_json", "error", "delay_s", "run_s", "function")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    LEASE_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    RESULT_JSON_FIELD_NUMBER: _ClassVar[int]
    ERROR_FIELD_NUMBER: _ClassVar[int]
    DELAY_S_FIELD_NUMBER: _ClassVar[int]
    RUN_S_FIELD_NUMBER: _ClassVar[int]
    FUNCTION_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    lease: str
    status: Status
    result_json: str
    error: JobError
    delay_s: float
    run_s: float
    function: str
    def __init__(self, job_id: _Optional[str] = ..., lease: _Optional[str] = ..., status: _Optional[_Union[Status, str]] = ..., result_json: _Optional[str] = ..., error: _Optional[_Union[JobError, _Mapping]] = ..., delay_s: _Optional[float] = ..., run_s: _Optional[float] = ..., function: _Optional[str] = ...) -> None: ...

class SettleRequest(_message.Message):
    __slots__ = ("queue", "outcomes")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    queue: str
    outcomes: _containers.RepeatedCompositeFieldContainer[Outcome]
    def __init__(self, queue: _Optional[str] = ..., outcomes: _Optional[_Iterable[_Union[Outcome, _Mapping]]] = ...) -> None: ...

class SettleReply(_message.Message):
    __slots__ = ("settled",)
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    settled: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, settled: _Optional[_Iterable[bool]] = ...) -> None: ...

class SweepRequest(_message.Message):
    __slots__ = ("queue",)
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    queue: str
    def __init__(self, queue: _Optional[str] = ...) -> None: ...

class SweepReply(_message.Message):
    __slots__ = ("reclaimed",)
    RECLAIMED_FIELD_NUMBER: _ClassVar[int]
    reclaimed: int
    def __init__(self, reclaimed: _Optional[int] = ...) -> None: ...

class WorkRequest(_message.Message):
    __slots__ = ("hello", "credit", "heartbeat", "results", "stop")
    HELLO_FIELD_NUMBER: _ClassVar[int]
    CREDIT_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    STOP_FIELD_NUMBER: _ClassVar[int]
    hello: WorkHello
    credit: WorkCredit
    heartbeat: WorkHeartbeat
    results: WorkResults
    stop: WorkStop
    def __init__(self, hello: _Optional[_Union[WorkHello, _Mapping]] = ..., credit: _Optional[_Union[WorkCredit, _Mapping]] = ..., heartbeat: _Optional[_Union[WorkHeartbeat, _Mapping]] = ..., results: _Optional[_Union[WorkResults, _Mapping]] = ..., stop: _Optional[_Union[WorkStop, _Mapping]] = ...) -> None: ...

class WorkHello(_message.Message):
    __slots__ = ("queue", "worker_id", "functions", "lease_s", "info_json")
    QUEUE_FIELD_NUMBER: _ClassVar[int]
    WORKER_ID_FIELD_NUMBER: _ClassVar[int]
    FUNCTIONS_FIELD_NUMBER: _ClassVar[int]
    LEASE_S_FIELD_NUMBER: _ClassVar[int]
    INFO_JSON_FIELD_NUMBER: _ClassVar[int]
    queue: str
    worker_id: str
    functions: _containers.RepeatedScalarFieldContainer[str]
    lease_s: float
    info_json: str
    def __init__(self, queue: _Optional[str] = ..., worker_id: _Optional[str] = ..., functions: _Optional[_Iterable[str]] = ..., lease_s: _Optional[float] = ..., info_json: _Optional[str] = ...) -> None: ...

class WorkCredit(_message.Message):
    __slots__ = ("credits",)
    CREDITS_FIELD_NUMBER: _ClassVar[int]
    credits: int
    def __init__(self, credits: _Optional[int] = ...) -> None: ...

class WorkHeartbeat(_message.Message):
    __slots__ = ("request_id", "leases")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    LEASES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    leases: _containers.RepeatedCompositeFieldContainer[LeaseRef]
    def __init__(self, request_id: _Optional[int] = ..., leases: _Optional[_Iterable[_Union[LeaseRef, _Mapping]]] = ...) -> None: ...

class WorkResults(_message.Message):
    __slots__ = ("request_id", "outcomes")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    OUTCOMES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    outcomes: _containers.RepeatedCompositeFieldContainer[Outcome]
    def __init__(self, request_id: _Optional[int] = ..., outcomes: _Optional[_Iterable[_Union[Outcome, _Mapping]]] = ...) -> None: ...

class WorkStop(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkResponse(_message.Message):
    __slots__ = ("jobs", "heartbeat", "results", "abort", "stopped", "drain")
    JOBS_FIELD_NUMBER: _ClassVar[int]
    HEARTBEAT_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    ABORT_FIELD_NUMBER: _ClassVar[int]
    STOPPED_FIELD_NUMBER: _ClassVar[int]
    DRAIN_FIELD_NUMBER: _ClassVar[int]
    jobs: WorkJobs
    heartbeat: WorkHeartbeatReply
    results: WorkResultsReply
    abort: WorkAbort
    stopped: WorkStopped
    drain: WorkDrain
    def __init__(self, jobs: _Optional[_Union[WorkJobs, _Mapping]] = ..., heartbeat: _Optional[_Union[WorkHeartbeatReply, _Mapping]] = ..., results: _Optional[_Union[WorkResultsReply, _Mapping]] = ..., abort: _Optional[_Union[WorkAbort, _Mapping]] = ..., stopped: _Optional[_Union[WorkStopped, _Mapping]] = ..., drain: _Optional[_Union[WorkDrain, _Mapping]] = ...) -> None: ...

class WorkJobs(_message.Message):
    __slots__ = ("jobs",)
    JOBS_FIELD_NUMBER: _ClassVar[int]
    jobs: _containers.RepeatedCompositeFieldContainer[Job]
    def __init__(self, jobs: _Optional[_Iterable[_Union[Job, _Mapping]]] = ...) -> None: ...

class WorkHeartbeatReply(_message.Message):
    __slots__ = ("request_id", "states")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    STATES_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    states: _containers.RepeatedScalarFieldContainer[LeaseState]
    def __init__(self, request_id: _Optional[int] = ..., states: _Optional[_Iterable[_Union[LeaseState, str]]] = ...) -> None: ...

class WorkResultsReply(_message.Message):
    __slots__ = ("request_id", "settled")
    REQUEST_ID_FIELD_NUMBER: _ClassVar[int]
    SETTLED_FIELD_NUMBER: _ClassVar[int]
    request_id: int
    settled: _containers.RepeatedScalarFieldContainer[bool]
    def __init__(self, request_id: _Optional[int] = ..., settled: _Optional[_Iterable[bool]] = ...) -> None: ...

class WorkAbort(_message.Message):
    __slots__ = ("job_id", "reason")
    JOB_ID_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    job_id: str
    reason: str
    def __init__(self, job_id: _Optional[str] = ..., reason: _Optional[str] = ...) -> None: ...

class WorkStopped(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class WorkDrain(_message.Message):
    __slots__ = ("grace_s",)
    GRACE_S_FIELD_NUMBER: _ClassVar[int]
    grace_s: float
    def __init__(self, grace_s: _Optional[float] = ...) -> None: ...
