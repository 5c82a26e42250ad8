"""Jobwire: async job queues with SAQ's semantics, as a library and as a service."""

from importlib.metadata import version

from jobwire.cron import CronJob
from jobwire.errors import (
    InvalidJobState,
    JobAborted,
    JobFailed,
    JobNotFound,
    JobwireError,
    StaleLease,
)
from jobwire.flow import BulkAction, FunctionLimits, JobFilter, QueueSettings, Rate
from jobwire.job import ErrorInfo, Job, Status
from jobwire.queue import Queue
from jobwire.worker import Worker

__version__ = version("jobwire")

__all__ = [
    "BulkAction",
    "CronJob",
    "ErrorInfo",
    "FunctionLimits",
    "InvalidJobState",
    "Job",
    "JobAborted",
    "JobFailed",
    "JobFilter",
    "JobNotFound",
    "JobwireError",
    "Queue",
    "QueueSettings",
    "Rate",
    "StaleLease",
    "Status",
    "Worker",
]
