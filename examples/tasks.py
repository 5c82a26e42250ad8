"""The seed's example, on Jobwire: a welcome email, an export with progress, a cron check.

Run a worker over it with ``jobwire worker examples.tasks.settings`` (from the repository's
root; it pulls from the service at ``$JOBWIRE_URL``, by default the local one) and enqueue
with ``jobwire enqueue send_welcome_email --queue emails --kwargs '{"user_id": 1, "email":
"a@example.com"}'``. The queue is ``emails`` (``$JOBWIRE_QUEUE`` names another).
"""

import asyncio
import logging
import os
from typing import Any

from jobwire import CronJob, Queue

log = logging.getLogger("examples.tasks")
queue = Queue.from_url(
    os.environ.get("JOBWIRE_URL", "http://127.0.0.1:8080"),
    name=os.environ.get("JOBWIRE_QUEUE", "emails"),
)


class Mailer:
    """Stands in for an email provider client; it only logs (no network here)."""

    def __init__(self) -> None:
        self.sent = 0

    async def send(self, to: str, template: str) -> None:
        await asyncio.sleep(0.01)
        self.sent += 1
        log.info("sent %s email to %s", template, to)


async def startup(ctx: dict[str, Any]) -> None:
    """Create shared resources once per worker."""
    ctx["mailer"] = Mailer()


async def shutdown(ctx: dict[str, Any]) -> None:
    """Report and release shared resources."""
    log.info("mailer sent %d emails", ctx["mailer"].sent)


async def send_welcome_email(ctx: dict[str, Any], *, user_id: int, email: str) -> None:
    """Send a welcome email to a new user.

    Args:
        ctx: Worker context (``queue``, ``job``, ``worker``, and ``mailer`` from startup).
        user_id: The new user's id.
        email: Where to send it.
    """
    await ctx["mailer"].send(email, "welcome")


async def process_export(
    ctx: dict[str, Any], *, export_id: int, rows: int = 1000
) -> dict[str, int]:
    """Export rows in chunks, reporting progress as it goes.

    Args:
        ctx: Worker context.
        export_id: The export record.
        rows: How many rows to export.

    Returns:
        The export id and the number of rows written.
    """
    job = ctx["job"]
    for done in range(0, rows, 250):
        await asyncio.sleep(0.05)  # stands in for a chunk of real work
        await job.update(progress=min(done + 250, rows) / rows)
    return {"export_id": export_id, "rows": rows}


async def check_queue_health(ctx: dict[str, Any]) -> None:
    """Log the queue's counts (cron, every minute)."""
    info = await ctx["queue"].info()
    log.info("queue %s counts: %s", info["name"], info["counts"])


settings = {
    "queue": queue,
    "functions": [send_welcome_email, process_export],
    "cron_jobs": [CronJob(check_queue_health, cron="* * * * *", timeout=30)],
    "concurrency": 10,
    "startup": startup,
    "shutdown": shutdown,
}
