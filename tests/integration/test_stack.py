"""`drnflow up/status/down` against real processes: idempotent, exact stop, clear errors, real flink CLI."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drnflow.stack import process
from drnflow.stack.flink import flink_cli

pytestmark = pytest.mark.integration


def drnflow(*args: str, env: dict[str, str] | None = None, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "drnflow", *args], capture_output=True, text=True,
                          env=env, timeout=timeout)


def ports() -> list[str]:
    return ["--kafka-port", str(process.free_port()), "--controller-port", str(process.free_port()),
            "--rest-port", str(process.free_port()), "--rpc-port", str(process.free_port())]


def our_java_pids(state: Path) -> list[int]:
    return [pid for pid in process.find_marked(f"@{state.resolve()}") if "java" in process.cmdline(pid)]


def test_up_status_flink_list_down_leaves_nothing(tmp_path: Path) -> None:
    state = tmp_path / "state"
    opts = ["--state-dir", str(state), *ports()]
    rest_port = opts[opts.index("--rest-port") + 1]
    reporter = [process.free_port(), process.free_port()]  # not 9249-9259: another cluster may hold those
    up = drnflow("up", "--cluster", "--prometheus", "--prometheus-ports", ",".join(map(str, reporter)), *opts)
    assert up.returncode == 0, up.stderr
    assert "kafka   ready in" in up.stdout and "flink   ready in" in up.stdout
    try:
        again = drnflow("up", "--cluster", *opts)
        assert again.returncode == 0, again.stderr
        assert "kafka   already running" in again.stdout and "flink   already running" in again.stdout

        status = drnflow("status", "--json", *opts)
        assert status.returncode == 0, status.stderr
        info = json.loads(status.stdout)
        assert info["kafka"]["running"] and info["kafka"]["bootstrap"].startswith("127.0.0.1:")
        assert info["flink"]["running"] and info["flink"]["taskmanagers"] == 1
        assert len(our_java_pids(state)) == 3  # broker, jobmanager, taskmanager

        # A TaskManager that dies stays dead on a standalone cluster: `status` says so, `up` starts it again.
        import signal

        taskmanagers = [p for p in our_java_pids(state) if "TaskManagerRunner" in process.cmdline(p)]
        assert len(taskmanagers) == 1
        os.kill(taskmanagers[0], signal.SIGKILL)
        while process.alive(taskmanagers[0]):
            time.sleep(0.1)
        lost = drnflow("status", *opts)
        assert "only 0 of its 1 TaskManager process(es) run" in lost.stdout, lost.stdout
        healed = drnflow("up", "--cluster", *opts)
        assert healed.returncode == 0, healed.stderr
        assert "flink   already running" in healed.stdout
        assert "0 TaskManager(s) were running: started 1" in healed.stdout, healed.stdout
        assert len(our_java_pids(state)) == 3
        info = json.loads(drnflow("status", "--json", *opts).stdout)
        assert info["flink"]["taskmanager_processes"] == info["flink"]["taskmanagers_expected"] == 1

        listing = subprocess.run([str(flink_cli()), "list", "-m", f"localhost:{rest_port}"],
                                 capture_output=True, text=True, timeout=120)
        assert listing.returncode == 0, listing.stderr
        assert "No running jobs" in listing.stdout

        # --prometheus: the wheel's reporter serves the cluster's metrics in Prometheus' text format.
        scraped = [_scrape(port) for port in reporter]
        assert any("flink_jobmanager" in text for text in scraped), f"no JobManager endpoint on {reporter}"
        assert any("flink_taskmanager" in text for text in scraped), f"no TaskManager endpoint on {reporter}"
    finally:
        down = drnflow("down", *opts)
    assert down.returncode == 0, down.stderr
    assert our_java_pids(state) == []
    after = drnflow("status", *opts)
    assert after.returncode == 3 and "kafka   not running" in after.stdout


def _scrape(port: int) -> str:
    import urllib.request

    try:
        with urllib.request.urlopen(f"http://localhost:{port}/metrics", timeout=3) as resp:
            return resp.read().decode(errors="replace")
    except OSError:
        return ""


def test_busy_port_is_one_clear_sentence(tmp_path: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        busy = s.getsockname()[1]
        result = drnflow("up", "--state-dir", str(tmp_path), "--kafka-port", str(busy),
                         "--controller-port", str(process.free_port()))
    assert result.returncode == 1
    assert f"port {busy} on 127.0.0.1 is already in use" in result.stderr
    assert "Traceback" not in result.stderr
    assert our_java_pids(tmp_path) == []


def test_missing_java_is_one_clear_sentence(tmp_path: Path) -> None:
    env = dict(os.environ, PATH=str(Path(sys.executable).parent))  # the venv only: no java, no mvn
    result = drnflow("up", "--state-dir", str(tmp_path), *ports(), env=env)
    assert result.returncode == 1
    assert "'java' is not on PATH" in result.stderr or "'mvn' is not on PATH" in result.stderr
    assert "Traceback" not in result.stderr
