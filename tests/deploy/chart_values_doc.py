"""The values table of helm/jobwire/README.md, made from values.yaml's `# --` comments.

`python tests/deploy/chart_values_doc.py` rewrites the table in the chart's README;
tests/deploy/test_chart_values_doc.py fails while the README's table is not what this gives.
"""

import json
import re
import sys
from pathlib import Path
from typing import Any

import yaml

CHART_DIR = Path(__file__).resolve().parents[2] / "helm" / "jobwire"
VALUES = CHART_DIR / "values.yaml"
README = CHART_DIR / "README.md"
BEGIN, END = "<!-- values-table: begin -->", "<!-- values-table: end -->"
_KEY = re.compile(r"^(?P<indent> *)(?P<key>[A-Za-z0-9_]+):")


def documented_keys(text: str) -> list[tuple[str, str]]:
    """(dotted key, description) of every key with a `# --` comment, in file order."""
    values = yaml.safe_load(text)
    found: list[tuple[str, str]] = []
    stack: list[tuple[int, str]] = []
    comment: list[str] | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("# --"):
            comment = [stripped.removeprefix("# --").strip()]
            continue
        if stripped.startswith("#") and comment is not None:
            comment.append(stripped.lstrip("#").strip())
            continue
        match = _KEY.match(line)
        if not match:
            if not stripped.startswith("#"):
                comment = None if stripped else comment
            continue
        indent = len(match["indent"])
        while stack and stack[-1][0] >= indent:
            stack.pop()
        stack.append((indent, match["key"]))
        path = [key for _, key in stack]
        if comment is not None and _lookup(values, path) is not _MISSING:
            found.append((".".join(path), " ".join(comment)))
        comment = None
    return found


_MISSING = object()


def _lookup(values: Any, path: list[str]) -> Any:
    for key in path:
        if not isinstance(values, dict) or key not in values:
            return _MISSING  # e.g. a key inside a list item
        values = values[key]
    return values


def leaves(values: Any, prefix: str = "") -> list[str]:
    """Dotted keys of every value that is not a non-empty mapping."""
    if isinstance(values, dict) and values:
        return [leaf for k, v in values.items() for leaf in leaves(v, f"{prefix}{k}.")]
    return [prefix.rstrip(".")]


def _type(value: Any) -> str:
    for kind, name in ((bool, "bool"), (int, "int"), (float, "number"), (str, "string"),
                       (list, "list"), (dict, "object")):  # fmt: skip
        if isinstance(value, kind):
            return name
    return "null"


def table(text: str) -> str:
    """The Markdown table of the documented values."""
    values = yaml.safe_load(text)
    rows = ["| key | type | default | description |", "|---|---|---|---|"]
    for key, description in documented_keys(text):
        value = _lookup(values, key.split("."))
        default = json.dumps(value, separators=(", ", ": ")).replace("|", "\\|")
        what = description.replace("|", "\\|")
        rows.append(f"| `{key}` | {_type(value)} | `{default}` | {what} |")
    return "\n".join(rows)


def render_readme(readme: str, text: str) -> str:
    """``readme`` with the table between the markers replaced."""
    head, rest = readme.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    return f"{head}{BEGIN}\n{table(text)}\n{END}{tail}"


if __name__ == "__main__":
    README.write_text(render_readme(README.read_text(), VALUES.read_text()))
    sys.exit(0)
