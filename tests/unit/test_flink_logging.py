"""The log4j filters drnflow adds to Flink's logging (operators/flink_logging.py): appended once, each dropping
exactly its one message, to the wheel's client file for the mini-cluster, never over a user's own
LOG4J_PROPERTIES or under `flink run`. That Flink then drops the lines is checked on the real stack
(test_live_chain, test_source_alignment)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from operators.flink_logging import METRIC_GROUP, QUIET_FLINK, SOURCE_COORDINATOR, quiet_local_log4j, with_quiet_flink

WHEEL_FILE = "rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FileAppender\n"


def test_the_filters_are_appended_once() -> None:
    once = with_quiet_flink(WHEEL_FILE)
    assert once.startswith(WHEEL_FILE) and once.endswith(QUIET_FLINK)
    assert with_quiet_flink(once) == once


def dropped_by_logger(properties: str) -> dict[str, re.Pattern[str]]:
    """logger name -> the regex its DENY filter holds, read as log4j reads the properties (no escapes in them)."""
    lines = [line for line in properties.splitlines() if " = " in line and not line.startswith("#")]
    values = dict(line.split(" = ", 1) for line in lines)
    out = {}
    for key, name in values.items():
        if key.startswith("logger.drnflow_") and key.endswith(".name"):
            prefix = key.removesuffix(".name")
            assert values[f"{prefix}.filter.drop.type"] == "RegexFilter"
            assert values[f"{prefix}.filter.drop.onMatch"] == "DENY"
            assert values[f"{prefix}.filter.drop.onMismatch"] == "NEUTRAL"
            out[name] = re.compile(values[f"{prefix}.filter.drop.regex"])
    return out


#: Messages as Flink 2.2.1 formats them (its source's format strings; the collisions from a session cluster's
#: log), and lines of the same loggers that must stay.
DROPPED = {
    SOURCE_COORDINATOR: "Distributing maxAllowedWatermark=1765148400000 of group=impressions-clicks to subTaskIds=[0] "
                        "for source Source: impressions.",
    METRIC_GROUP: "Name collision: Group already contains a Metric with the name 'pendingCommittables'. Metric will "
                  "not be reported.[localhost, taskmanager, localhost:38139-6c3d8a, sub-alignf3be0ff8., "
                  "outputs-sink: Committer, 0]",
}
KEPT = {
    SOURCE_COORDINATOR: "Starting split enumerator for source Source: impressions.",
    METRIC_GROUP: "Name collision: Group already contains a Metric with the name 'currentSendTime'. Metric will not "
                  "be reported.[localhost, taskmanager, localhost:38139-6c3d8a, sub-alignf3be0ff8., "
                  "outputs-sink: Writer, 0]",
}


def test_each_filter_drops_exactly_its_one_message() -> None:
    filters = dropped_by_logger(with_quiet_flink(WHEEL_FILE))
    assert set(filters) == {SOURCE_COORDINATOR, METRIC_GROUP}
    for logger, regex in filters.items():
        assert regex.fullmatch(DROPPED[logger]), logger  # log4j's RegexFilter matches the whole message
        assert not regex.fullmatch(KEPT[logger]), logger


@pytest.fixture
def wheel_conf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name in ("LOG4J_PROPERTIES", "PYFLINK_GATEWAY_PORT"):  # set first, so what the code sets is undone too
        monkeypatch.setenv(name, "")
        monkeypatch.delenv(name)
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "log4j-cli.properties").write_text(WHEEL_FILE)
    return conf


def test_the_mini_cluster_gets_the_wheel_file_plus_the_filter(wheel_conf: Path, tmp_path: Path) -> None:
    import os

    target = quiet_local_log4j(wheel_conf, tmp_path / "out")
    assert target == tmp_path / "out" / "log4j-cli.properties"
    assert target.read_text() == with_quiet_flink(WHEEL_FILE)
    assert os.environ["LOG4J_PROPERTIES"] == str(target)


def test_a_users_log4j_file_wins(wheel_conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LOG4J_PROPERTIES", "/etc/mine.properties")
    assert quiet_local_log4j(wheel_conf, tmp_path / "out") == Path("/etc/mine.properties")
    assert not (tmp_path / "out").exists()


def test_under_flink_run_nothing_changes(wheel_conf: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    monkeypatch.setenv("PYFLINK_GATEWAY_PORT", "40000")
    assert quiet_local_log4j(wheel_conf, tmp_path / "out") is None
    assert "LOG4J_PROPERTIES" not in os.environ and not (tmp_path / "out").exists()


def test_a_read_only_cache_leaves_the_job_running(wheel_conf: Path, tmp_path: Path) -> None:
    import os

    blocker = tmp_path / "file"
    blocker.write_text("")
    assert quiet_local_log4j(wheel_conf, blocker / "out") is None  # a folder under a file cannot be made
    assert "LOG4J_PROPERTIES" not in os.environ
