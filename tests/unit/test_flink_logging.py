"""The log4j filter drnflow adds to Flink's logging (operators/flink_logging.py): appended once, to the
wheel's client file for the mini-cluster, never over a user's own LOG4J_PROPERTIES or under `flink run`.
That Flink then drops the announcements is checked on the real stack (test_live_chain, test_source_alignment)."""

from __future__ import annotations

from pathlib import Path

import pytest

from operators.flink_logging import QUIET_ALIGNMENT, SOURCE_COORDINATOR, quiet_local_log4j, with_quiet_alignment

WHEEL_FILE = "rootLogger.level = INFO\nrootLogger.appenderRef.file.ref = FileAppender\n"


def test_the_filter_is_appended_once() -> None:
    once = with_quiet_alignment(WHEEL_FILE)
    assert once.startswith(WHEEL_FILE) and once.endswith(QUIET_ALIGNMENT)
    assert with_quiet_alignment(once) == once
    assert f"logger.drnflow_alignment.name = {SOURCE_COORDINATOR}" in once
    assert "filter.announce.onMatch = DENY" in once and "filter.announce.onMismatch = NEUTRAL" in once


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
    assert target.read_text() == with_quiet_alignment(WHEEL_FILE)
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
