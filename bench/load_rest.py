"""REST load with wrk: POST the benchmark's enqueue body at N connections, read requests/s.

wrk (Debian package ``wrk``) needs a Lua script to send a POST body; :func:`post_script`
writes one. wrk runs ``min(2, N)`` threads (it refuses fewer connections than threads).
"""

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from systems import BenchError

ENQUEUE_BODY = '{"function": "noop", "kwargs": {"n": 1}}'
ENQUEUE_PATH = "/v1/queues/bench/jobs"
WRK_THREADS = 2
WARMUP_S = 1
TIMEOUT_S = 10  # wrk's default (2 s) counts queueing under overload on a busy 2-core box as errors
_LUA = """wrk.method = "POST"
wrk.body = '{body}'
wrk.headers["Content-Type"] = "application/json"
"""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run reports.

    Attributes:
        requests_per_s: wrk's ``Requests/sec``.
        requests: Requests completed.
        failed: Non-2xx/3xx answers plus socket errors.
        detail: wrk's lines about the failures.
    """

    requests_per_s: float
    requests: int
    failed: int
    detail: str = ""


def post_script(folder: Path) -> Path:
    """Write the Lua script that makes wrk POST :data:`ENQUEUE_BODY`; return its path."""
    path = folder / "enqueue.lua"
    path.write_text(_LUA.format(body=ENQUEUE_BODY))
    return path


def run_wrk(url: str, connections: int, seconds: int, script: Path) -> WrkResult:
    """Run wrk against ``url`` for ``seconds`` at ``connections``.

    Raises:
        BenchError: wrk failed, or some requests failed.
    """
    threads = min(WRK_THREADS, connections)
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{seconds}s",
               f"--timeout={TIMEOUT_S}s", "-s", str(script), url]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 30)
    if done.returncode != 0:
        raise BenchError(f"wrk exited with {done.returncode}: {done.stderr.strip()}")
    result = parse_wrk(done.stdout)
    if result.failed:
        raise BenchError(
            f"{result.failed} of {result.requests} requests to {url} at {connections} "
            f"connections failed: {result.detail}"
        )
    return result


def warm_up(url: str, connections: int, script: Path) -> WrkResult:
    """A short wrk run whose rate is not reported (connections, caches, pools)."""
    return run_wrk(url, connections, WARMUP_S, script)


def parse_wrk(output: str) -> WrkResult:
    """Read requests/s, the request count and the failures from wrk's report."""
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    total = re.search(r"(\d+) requests in", output)
    if rate is None or total is None:
        raise BenchError(f"cannot read wrk's report:\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", output)
    errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    failed = int(non_2xx.group(1)) if non_2xx else 0
    if errors is not None:
        failed += sum(int(n) for n in errors.groups())
    detail = "; ".join(m.group(0) for m in (non_2xx, errors) if m is not None)
    return WrkResult(float(rate.group(1)), int(total.group(1)), failed, detail)
