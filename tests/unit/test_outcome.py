"""Outcome: an attempt can only end in a status that settles it."""

import pytest

from jobwire import Status
from jobwire.backends.base import Outcome


@pytest.mark.parametrize("status", [Status.ACTIVE, Status.SCHEDULED, Status.ABORTING])
def test_outcome_refuses_a_status_that_would_strand_the_job(status: Status) -> None:
    with pytest.raises(ValueError, match="complete, failed, aborted or queued"):
        Outcome("job", "lease", status)


@pytest.mark.parametrize("status", [Status.COMPLETE, Status.FAILED, Status.ABORTED, Status.QUEUED])
def test_outcome_accepts_the_statuses_that_end_an_attempt(status: Status) -> None:
    assert Outcome("job", "lease", status).status is status
