"""The package's public surface."""

import jobwire

PUBLIC_NAMES = {
    "Queue",
    "Worker",
    "CronJob",
    "Job",
    "Status",
    "ErrorInfo",
    "JobwireError",
    "JobNotFound",
    "InvalidJobState",
    "StaleLease",
    "JobFailed",
    "JobAborted",
    "QueueSettings",
    "Rate",
    "FunctionLimits",
    "JobFilter",
    "BulkAction",
}


def test_all_is_exactly_the_public_api() -> None:
    assert set(jobwire.__all__) == PUBLIC_NAMES
    assert len(jobwire.__all__) == len(PUBLIC_NAMES), "__all__ lists a name twice"


def test_every_exported_name_resolves() -> None:
    missing = [name for name in jobwire.__all__ if not hasattr(jobwire, name)]
    assert missing == []


def test_errors_share_one_base_class() -> None:
    for name in ("JobNotFound", "InvalidJobState", "StaleLease", "JobFailed", "JobAborted"):
        assert issubclass(getattr(jobwire, name), jobwire.JobwireError), name
    assert issubclass(jobwire.JobwireError, Exception)
