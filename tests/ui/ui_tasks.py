"""Tasks the dashboard's browser tests run on a real worker.

The worker imports this module from tests/ui, put on its ``PYTHONPATH``.
"""

import asyncio
import os
from typing import Any

from jobwire import Queue

queue = Queue.from_url(os.environ["JOBWIRE_URL"], name=os.environ.get("UI_QUEUE", "ui"))


async def sleepy(ctx: dict[str, Any], *, seconds: float) -> str:
    """Sleep, then succeed."""
    await asyncio.sleep(seconds)
    return "rested"


async def gated(ctx: dict[str, Any], *, gate: str) -> str:
    """Run until the file ``gate`` exists."""
    for _ in range(1200):  # a minute at most
        if os.access(gate, os.F_OK):
            return "through"
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{gate} never appeared")


async def boom(ctx: dict[str, Any], *, why: str) -> None:
    """Always fail, with a traceback."""
    raise ValueError(f"kaboom: {why}")


async def flaky(ctx: dict[str, Any], *, marker: str) -> str:
    """Fail the first time (creating ``marker``), succeed once it exists."""
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return "second time lucky"
    raise RuntimeError("first attempt fails")


async def slow(ctx: dict[str, Any], *, steps: int) -> str:
    """Run long, reporting progress each step (an abort cancels it)."""
    for step in range(steps):
        await asyncio.sleep(0.1)
        await ctx["job"].update(progress=(step + 1) / steps, meta={"step": step + 1})
    return "done"


settings = {"queue": queue, "functions": [sleepy, gated, boom, flaky, slow], "concurrency": 4}
