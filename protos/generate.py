"""Generate the Python gRPC stubs from ``protos/`` (run by ``make proto``).

The stubs are committed under ``service/jobwire/v1/`` (the proto package ``jobwire.v1``
is the Python package ``jobwire.v1``, so the generated imports work as they are) and
never edited by hand; ``tests/grpc/test_stubs.py`` regenerates them and compares.

Usage:
    python protos/generate.py [OUTPUT_ROOT]    (default: service)
"""

import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

PROTOS = Path(__file__).resolve().parent
SOURCES = ("jobwire/v1/jobwire.proto",)
GENERATED = ("jobwire_pb2.py", "jobwire_pb2.pyi", "jobwire_pb2_grpc.py")


def generate(output_root: Path) -> list[Path]:
    """Run protoc on ``SOURCES``; return the generated files (under ``output_root``).

    Raises:
        RuntimeError: protoc failed.
    """
    well_known = resources.files("grpc_tools") / "_proto"
    args = [
        "protoc",
        f"-I{PROTOS}",
        f"-I{well_known}",
        f"--python_out={output_root}",
        f"--pyi_out={output_root}",
        f"--grpc_python_out={output_root}",
        *SOURCES,
    ]
    if protoc.main(args) != 0:
        raise RuntimeError(f"protoc failed: {' '.join(args)}")
    return [output_root / "jobwire" / "v1" / name for name in GENERATED]


if __name__ == "__main__":
    root = Path(sys.argv[1] if len(sys.argv) > 1 else "service")
    for path in generate(root):
        print(path)
