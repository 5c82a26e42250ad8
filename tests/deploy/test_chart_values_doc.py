"""helm/jobwire/README.md's values table is in step with values.yaml, and documents every value."""

import yaml
from chart_values_doc import README, VALUES, documented_keys, leaves, render_readme, table


def test_the_chart_readme_table_is_what_values_yaml_gives() -> None:
    readme = README.read_text()
    assert readme == render_readme(readme, VALUES.read_text()), (
        "helm/jobwire/README.md's values table is stale: run "
        "`python tests/deploy/chart_values_doc.py` and commit it"
    )


def test_every_value_is_documented() -> None:
    text = VALUES.read_text()
    documented = {key for key, _ in documented_keys(text)}
    undocumented = [
        leaf
        for leaf in leaves(yaml.safe_load(text))
        if not any(leaf == key or leaf.startswith(f"{key}.") for key in documented)
    ]
    assert undocumented == []


def test_the_table_follows_a_changed_default() -> None:
    """Not a constant: a changed default or comment changes the table."""
    text = VALUES.read_text()
    changed = text.replace(
        "  enabled: true\n  # -- gRPC port", "  enabled: false\n  # -- gRPC port"
    )
    assert changed != text
    assert table(changed) != table(text)
    assert "| `grpc.enabled` | bool | `true` |" in table(text)
