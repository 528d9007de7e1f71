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
