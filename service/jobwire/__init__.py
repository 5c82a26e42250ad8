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
from jobwire.job import ErrorInfo, Job, Status
from jobwire.queue import Queue
from jobwire.worker import Worker

__version__ = version("jobwire")

__all__ = [
    "CronJob",
    "ErrorInfo",
    "InvalidJobState",
    "Job",
    "JobAborted",
    "JobFailed",
    "JobNotFound",
    "JobwireError",
    "Queue",
    "StaleLease",
    "Status",
    "Worker",
]
