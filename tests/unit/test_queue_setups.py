"""The queues `jobwire serve` sets up at start: JOBWIRE_QUEUES and JOBWIRE_QUEUES_FILE."""

import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from jobwire import FunctionLimits, QueueSettings, Rate
from jobwire.server.settings import Settings


@pytest.fixture(autouse=True)
def _no_service_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("JOBWIRE_QUEUES", "JOBWIRE_QUEUES_FILE", "JOBWIRE_TOKENS", "JOBWIRE_HOST"):
        monkeypatch.delenv(name, raising=False)


def test_queues_come_from_json_and_a_file_the_inline_entry_winning(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    path = tmp_path / "queues.json"
    path.write_text(json.dumps({"emails": {"max_active": 1}, "reports": {"paused": True}}))
    inline = {
        "emails": {
            "max_active": 5,
            "rate": {"limit": 100},
            "functions": {"send": {"max_active": 2}},
        },
        "audit": {"max_active": None, "paused": False},
    }
    monkeypatch.setenv("JOBWIRE_QUEUES", json.dumps(inline))
    monkeypatch.setenv("JOBWIRE_QUEUES_FILE", str(path))
    setups = Settings().queue_setups()
    assert sorted(setups) == ["audit", "emails", "reports"]
    assert setups["emails"].to_settings() == QueueSettings(
        max_active=5, rate=Rate(100, 1.0), functions={"send": FunctionLimits(max_active=2)}
    )
    assert (setups["emails"].has_limits, setups["emails"].paused) == (True, None)
    assert (setups["reports"].has_limits, setups["reports"].paused) == (False, True)
    # an explicit null is a limit field: the stored limits are replaced (cleared)
    assert setups["audit"].has_limits and setups["audit"].to_settings() == QueueSettings()


@pytest.mark.parametrize(
    ("queues", "words"),
    [
        ({"emails": {"max_active": 0}}, ["emails", "max_active"]),
        ({"emails": {"burst": 3}}, ["burst"]),
        ({"emails": {"rate": {"limit": 5, "period_s": 0}}}, ["period_s"]),
        ({"no spaces": {"max_active": 1}}, ["no spaces"]),
        ({"emails": {"paused": "maybe"}}, ["paused"]),
    ],
)
def test_a_bad_entry_is_refused_naming_it(queues: dict[str, object], words: list[str]) -> None:
    with pytest.raises(ValidationError) as caught:
        Settings(queues=queues)
    for word in words:
        assert word in str(caught.value)


def test_a_bad_or_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="queues_file"):
        Settings(queues_file=tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"emails": {"max_active": -1}}')
    with pytest.raises(ValidationError, match="max_active"):
        Settings(queues_file=bad)


def test_json_that_is_not_an_object_of_queues_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JOBWIRE_QUEUES", "emails: 5")
    with pytest.raises(ValueError, match="queues"):
        Settings()
