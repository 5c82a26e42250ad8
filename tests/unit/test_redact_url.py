"""URLs in logs and errors carry no passwords or tokens."""

import pytest

from jobwire.backends import backend_from_url, redact_url


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("redis://:secret@h:6379/0", "redis://:***@h:6379/0"),
        ("http://:token@h:8000", "http://:***@h:8000"),
        ("postgresql://u:pw@h/db", "postgresql://u:***@h/db"),
        (
            "postgresql://u:pw@b:6432/db?prepared_statements=false&listen_url=postgresql://u:pw2@h/db",
            "postgresql://u:***@b:6432/db?prepared_statements=false&listen_url=postgresql://u:***@h/db",
        ),
        ("redis://h:6379/0", "redis://h:6379/0"),
        ("sqlite:///var/jobs.db", "sqlite:///var/jobs.db"),
    ],
)
def test_redact_url_hides_every_secret(url: str, shown: str) -> None:
    assert redact_url(url) == shown


def test_an_unsupported_scheme_error_hides_the_password() -> None:
    with pytest.raises(ValueError) as caught:
        backend_from_url("mysql://u:hunter2@h/db", "q", lease_s=30)
    assert "hunter2" not in str(caught.value)
