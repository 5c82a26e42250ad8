"""The conformance suite's timing, on one time scale.

Leases, heartbeats, worker poll and sweep intervals, and the sleeps that wait for them
are written in the units of the suite's original timings and multiplied by ``TIME_SCALE``
here, so that they shrink (or, on a slow machine, grow) together and keep their ratios:
a lease still expires after the sleep that waits for it and not before the one that must
see it alive. Bounds that state a requirement (a wait returns within 0.2 s, a scheduled job
starts within 0.25 s of its time) and timings the stores count in whole seconds (``ttl``,
cron ticks) are not scaled.

``$JOBWIRE_TEST_TIME_SCALE`` overrides the scale (``1`` gives the original timings).
"""

import os

TIME_SCALE = float(os.environ.get("JOBWIRE_TEST_TIME_SCALE", "0.5"))


def seconds(base: float) -> float:
    """``base`` seconds of the original timings, on the suite's time scale."""
    return base * TIME_SCALE


QUEUE_LEASE_S = seconds(2.0)  # the default lease of the suite's queues
