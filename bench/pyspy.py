"""py-spy against a running server process (``py-spy record --pid``; needs root or
ptrace rights), for the benchmark's ``--profile`` option."""

import contextlib
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

from systems import BenchError

FORMATS = {"flamegraph": "svg", "raw": "txt"}  # py-spy --format: file suffix
ATTACH_S = 0.5  # let py-spy attach before the load starts


def py_spy_binary() -> str:
    """The py-spy next to this Python (the dev extra installs it), else on the PATH."""
    beside = Path(sys.executable).parent / "py-spy"
    found = str(beside) if beside.exists() else shutil.which("py-spy")
    if found is None:
        raise BenchError("py-spy not found: install the dev extra (pip install -e '.[dev]')")
    return found


@contextlib.contextmanager
def recording(pid: int, output: Path, fmt: str, seconds: int) -> Iterator[None]:
    """Record ``pid`` for ``seconds`` into ``output`` in py-spy's ``fmt`` while the
    body runs (the body should load the process for at least ``seconds``)."""
    output.parent.mkdir(parents=True, exist_ok=True)
    command = [py_spy_binary(), "record", "--pid", str(pid), "--duration", str(seconds),
               "--format", fmt, "--output", str(output)]  # fmt: skip
    spy = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(ATTACH_S)
    try:
        yield
    finally:
        _, stderr = spy.communicate(timeout=seconds + 30)
    if spy.returncode != 0:
        raise BenchError(f"py-spy exited with {spy.returncode}: {stderr.decode().strip()}")
