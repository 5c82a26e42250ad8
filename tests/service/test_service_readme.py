"""The README's curl walk-through, run with bash exactly as written, against a real service."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

README = Path(__file__).resolve().parents[2] / "README.md"
MARKER = "<!-- curl-walkthrough -->"


def walkthrough() -> str:
    """The ```sh block right after the walk-through marker in the README."""
    text = README.read_text(encoding="utf-8")
    assert MARKER in text, f"{MARKER} not found in {README}"
    after = text.split(MARKER, 1)[1]
    match = re.match(r"\s*```sh\n(.*?)\n```", after, flags=re.DOTALL)
    assert match, "no ```sh block right after the marker"
    return match.group(1) + "\n"


def test_the_curl_walkthrough_runs(service_url: str, tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed; the README's walk-through needs it")
    script = tmp_path / "walkthrough.sh"
    script.write_text(walkthrough())
    done = subprocess.run(
        ["bash", str(script)],
        cwd=tmp_path,
        env={**os.environ, "JOBWIRE": service_url},
        capture_output=True,
        text=True,
        timeout=30,
    )
    output = done.stdout
    assert done.returncode == 0, f"exit {done.returncode}\n{output}\n{done.stderr}"
    assert done.stderr == "", done.stderr
    lines = output.splitlines()
    assert "queued" in lines and "aborted" in lines, output
    assert lines.index("queued") < lines.index("aborted"), output
    assert '"name":"emails"' in output, output  # the queue's counts came last
    assert (tmp_path / "job.json").exists()
