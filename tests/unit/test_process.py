"""Helpers that find and stop our processes and pick ports."""

from __future__ import annotations

import socket
from pathlib import Path

from drnflow.stack import process


def test_free_ports_are_distinct_and_bindable() -> None:
    ports = [process.free_port() for _ in range(50)]
    assert len(set(ports)) == 50
    with socket.socket() as s:
        s.bind(("127.0.0.1", ports[-1]))


def test_port_in_use_sees_a_listening_socket() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        assert process.port_in_use("127.0.0.1", s.getsockname()[1])


def test_marker_names_service_and_state(tmp_path: object) -> None:
    assert process.marker("kafka", tmp_path) == f"-Ddrnflow.service=kafka@{tmp_path}"  # type: ignore[arg-type]


def test_cluster_stop_ends_orphans_that_carry_its_environment_and_nothing_else(tmp_path: Path) -> None:
    """A SIGKILLed TaskManager's Python workers (process mode) live on, orphaned; they inherit the cluster's
    environment, so `stop` (`drnflow down`, a test's teardown) ends them. A process with another cluster's
    marker is left alone."""
    import subprocess

    from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig

    ours = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path / "ours"))
    theirs = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path / "theirs"))

    def orphan(cluster: FlinkCluster) -> int:
        # bash exits at once: the sleep is reparented, as a dead TaskManager's worker is.
        out = subprocess.run(["bash", "-c", "sleep 300 >/dev/null 2>&1 & echo $!"], env=cluster.env(),
                             capture_output=True, text=True, check=True).stdout
        return int(out)

    mine, other = orphan(ours), orphan(theirs)
    try:
        assert process.find_in_environment(ours.service_id) == [mine]
        assert ours.stop() == [mine]
        assert not process.alive(mine)
        assert process.alive(other)
        assert ours.stop() == []
    finally:
        theirs.stop()
    assert not process.alive(other)


def test_orphaned_workers_are_the_python_workers_no_live_daemon_owns(tmp_path: Path) -> None:
    """What `heal` (`drnflow up --cluster` on a running cluster) ends before it starts a TaskManager again: a
    worker whose TaskManager is gone. Not a worker a live daemon is an ancestor of, nor a process of the
    cluster that is not a Python worker."""
    import subprocess
    import sys

    from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig

    cluster = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path))
    worker = f"{sys.executable} -c 'import time; time.sleep(300)' pyflink.fn_execution.beam.beam_boot"

    def spawn(script: str) -> int:
        return int(subprocess.run(["bash", "-c", script], env=cluster.env(), capture_output=True, text=True,
                                  check=True).stdout)

    orphan = spawn(f"{worker} >/dev/null 2>&1 & echo $!")  # bash exits: re-parented, as a dead TaskManager's is
    stranger = spawn("sleep 300 >/dev/null 2>&1 & echo $!")  # the cluster's, but no Python worker
    # A stand-in TaskManager: its own command line does not look like a worker's, as a TaskManager's does not.
    owner = subprocess.Popen(["bash", "-c", 'eval "$WORKER" & wait'], env={**cluster.env(), "WORKER": worker},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        import time

        deadline = time.monotonic() + 10
        while len(process.find_in_environment(cluster.service_id)) < 5 and time.monotonic() < deadline:
            time.sleep(0.05)
        owned = [p for p in process.find_in_environment(cluster.service_id)
                 if owner.pid in process.ancestors(p) and "fn_execution" in process.cmdline(p)]
        assert len(owned) == 1, "the owner's worker started"
        assert process.orphaned_workers(cluster.service_id, owners=[owner.pid]) == [orphan]
        assert sorted(process.orphaned_workers(cluster.service_id, owners=[])) == sorted([orphan, *owned])
    finally:
        cluster.stop()
        owner.wait(10)
    assert not any(process.alive(p) for p in (orphan, stranger, owner.pid))


def test_heal_without_a_jobmanager_is_one_clear_sentence(tmp_path: Path) -> None:
    import pytest

    from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig
    from operators.jars import SetupError

    refused = r"JobManager of .* is not running .*`drnflow down`, then `drnflow up --cluster`"
    with pytest.raises(SetupError, match=refused):
        FlinkCluster(FlinkClusterConfig(state_dir=tmp_path)).heal()
