"""Write clients/openapi.json: the REST service's OpenAPI document (`make openapi`).

The document comes straight from the app (``create_app(Settings()).openapi()``), dumped with
sorted keys so that it diffs cleanly; tests/clients/test_openapi.py fails when the committed
file is out of date. ``--check`` exits 1 instead of writing when the file differs.
"""

import json
import sys
from pathlib import Path

from jobwire.server.app import create_app
from jobwire.server.settings import Settings

TARGET = Path(__file__).resolve().parent / "openapi.json"


def render() -> str:
    """The OpenAPI document as the committed file holds it."""
    # Loopback, no tokens: the defaults, whatever JOBWIRE_* the environment sets.
    settings = Settings(host="127.0.0.1", tokens="", tokens_file=None)
    document = create_app(settings).openapi()
    return json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: list[str]) -> int:
    text = render()
    if "--check" in argv:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is out of date: run `make openapi`", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
