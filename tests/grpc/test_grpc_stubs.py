"""The committed gRPC stubs are exactly what protoc makes of protos/ today."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generator() -> object:
    spec = importlib.util.spec_from_file_location("proto_generate", ROOT / "protos" / "generate.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_stubs_match_a_fresh_generation(tmp_path: Path) -> None:
    generated = _generator().generate(tmp_path)  # type: ignore[attr-defined]
    assert len(generated) == 3
    stale = []
    for path in generated:
        committed = ROOT / "service" / path.relative_to(tmp_path)
        if not committed.exists() or committed.read_bytes() != path.read_bytes():
            stale.append(str(committed.relative_to(ROOT)))
    assert not stale, f"stale gRPC stubs (run `make proto`): {stale}"


def test_every_proto_message_and_field_is_documented() -> None:
    """Each message, enum, service, rpc and field of the API carries a comment."""
    text = (ROOT / "protos" / "jobwire" / "v1" / "jobwire.proto").read_text()
    undocumented = []
    previous = ""
    for raw in text.splitlines():
        line = raw.strip()
        is_field = line.endswith(";") and "=" in line and not line.startswith(("syntax", "//"))
        is_block = line.startswith(("message ", "enum ", "service ", "rpc "))
        if is_field and "//" not in line:
            undocumented.append(line)
        if is_block and line.startswith(("service ", "rpc ")) and not previous.startswith("//"):
            undocumented.append(line)
        previous = line
    assert not undocumented, "undocumented in jobwire.proto:\n" + "\n".join(undocumented)
