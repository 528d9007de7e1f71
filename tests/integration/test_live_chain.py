"""DRN's timeline on the real broker and Flink (issue 13, item 2): simulate -> minor-update job (DBGD every
window) -> triggers -> `major-update --follow` (retrain on the log since the last MAJOR, gate, publish) ->
the job rebases and the ranker follows -> again. Two MAJORs above the first, and MINORs on top of each.

Long (about 5 minutes on two cores), so it runs with `make test-faults`.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from drnflow.stack.flink import flink_home
from drnflow.stack.kafka import create_topics
from operators.paths import PROJECT_ROOT
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import read_committed

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.faults]


def drnflow(*args: str) -> None:
    result = subprocess.run([sys.executable, "-m", "drnflow", *args], cwd=PROJECT_ROOT, capture_output=True,
                            text=True, timeout=600)
    assert result.returncode == 0, (args, result.stdout[-2000:], result.stderr[-3000:])


def spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    out = log.open("wb")
    proc = subprocess.Popen(args, cwd=PROJECT_ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    out.close()
    return proc


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def versions(bootstrap: str, names: TopicNames) -> list[dict[str, Any]]:
    return [serde.decode("ModelWeights", r.value) for r in read_committed(bootstrap, names.model_weights, 5)]


def wait_until(what: str, check: Any, procs: list[subprocess.Popen[bytes]], timeout_s: float, logs: Path,
               explain: Any = None) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"{dead} exited while waiting for {what}; logs in {logs}"
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; logs in {logs}"
                         + ("" if explain is None else f"; {explain()}"))


def decisions(bootstrap: str, names: TopicNames) -> dict[int, dict[str, int]]:
    """How many windows of each served version the job decided, by decision: what a failure should show."""
    out: dict[int, dict[str, int]] = {}
    for r in read_committed(bootstrap, names.win_rates, 5):
        row = serde.decode("WinRate", r.value)
        by = out.setdefault(int(row["model_version"]), {})
        by[str(row["decision"])] = by.get(str(row["decision"]), 0) + 1
    return out


def test_minor_and_major_updates_chain_on_the_real_stack(kafka_bootstrap: str, tmp_path: Path) -> None:
    names = TopicNames(f"chain{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names)
    where = ["--bootstrap", kafka_bootstrap, "--prefix", names.prefix]
    drnflow("model", "init", "drn", "--seed", "0", *where)
    job = spawn([sys.executable, "-m", "jobs.minor_update", *where, "--window", "2 min", "--attribution-window",
                 "2 min", "--trigger-every", "10 min", "--checkpoint-interval", "1 s", "--checkpoint-dir",
                 str(tmp_path / "ckpt")], tmp_path / "job.log")
    # A lenient gate: this test is about what a published MAJOR does to the chain, not about the gate.
    major = spawn([sys.executable, "-m", "drnflow", "major-update", "--follow", *where, "--steps", "100",
                   "--no-baselines", "--device", "cpu", "--no-progress", "--gate-margin", "1.0", "--runs-dir",
                   str(tmp_path / "runs"), "--group-id", f"g-{names.prefix}"], tmp_path / "major.log")
    procs = [job, major]
    sim = ["simulate", *where, "--policy", "drn", "--click-model", "pbm", "--arrivals", "poisson", "--rate", "1",
           "--no-progress", "--seed", "5"]

    def lineage() -> dict[int, dict[str, Any]]:
        return {int(v["version"]): v for v in versions(kafka_bootstrap, names)}

    def root(v: dict[str, Any], by_version: dict[int, dict[str, Any]]) -> int:
        while v["kind"] == "MINOR":
            if int(v["parent_version"]) not in by_version:
                return -1  # a parent not read (yet): descends from no MAJOR known here
            v = by_version[int(v["parent_version"])]
        return int(v["version"])

    def majors() -> list[dict[str, Any]]:
        return [v for v in lineage().values() if v["kind"] == "MAJOR" and v["version"] > 1]

    def minors_on(version: int) -> list[dict[str, Any]]:
        by_version = lineage()
        return [v for v in by_version.values() if v["kind"] == "MINOR" and root(v, by_version) == version]

    def explain() -> str:
        chain = [(n, v["kind"], v["parent_version"]) for n, v in lineage().items()]
        return f"versions (version, kind, parent): {chain}; windows decided by served version: " \
               f"{decisions(kafka_bootstrap, names)}"

    def feed_until_minor_on(version: int) -> list[dict[str, Any]]:
        """A MINOR needs the explore network to win a window, which a handful of windows may not show: more
        traffic (another 15 min of event time) until one does, at most four times."""
        for feed in range(4):
            drnflow(*sim, "--impressions", "900", "--continue")
            try:
                return wait_until(f"a MINOR on MAJOR v{version} (feed {feed + 1})",
                                  lambda: minors_on(version), procs, 150, tmp_path, explain)
            except AssertionError:
                if feed == 3:
                    raise
        raise AssertionError("unreachable")

    try:
        drnflow(*sim, "--impressions", "900")  # 15 min of event time: a trigger at 10 min
        first = wait_until("a first MAJOR above v1", majors, procs, 240, tmp_path, explain)[0]
        feed_until_minor_on(first["version"])  # the ranker serves the new MAJOR; the next trigger at 20 min
        second = wait_until("a second MAJOR", lambda: majors()[1:], procs, 240, tmp_path, explain)[0]
        feed_until_minor_on(second["version"])
    finally:
        stop(major)
        stop(job)
    by_version = lineage()
    numbers = [int(v["version"]) for v in versions(kafka_bootstrap, names)]
    assert len(numbers) == len(set(numbers)), f"a version number was used twice: {numbers}"
    assert first["parent_version"] is not None and second["parent_version"] is not None
    assert second["version"] > first["version"] > 1
    # The job rebased on each MAJOR: MINORs after it descend from it (or a later MAJOR), never from one before it.
    after_second = [v for n, v in by_version.items() if v["kind"] == "MINOR" and n > second["version"]]
    assert after_second and all(root(v, by_version) >= second["version"] for v in after_second), explain()
    served = [serde.decode("Impression", r.value) for r in read_committed(kafka_bootstrap, names.impressions, 10)]
    assert min(int(i["model_version"]) for i in served[-900:]) >= second["version"], "the ranker follows the MAJORs"
    # The job ran aligned on the mini-cluster, whose log4j (operators/flink_logging.py) drops the
    # SourceCoordinator's announcement every 100 ms per source, and only that.
    gateway_log = max((flink_home() / "log").glob("flink-*-python-*.log"), key=lambda f: f.stat().st_mtime)
    coordinator = [line for line in gateway_log.read_text(errors="replace").splitlines() if "SourceCoordinator" in line]
    assert any("Starting split enumerator" in line for line in coordinator), f"no coordinator lines in {gateway_log}"
    assert not [line for line in coordinator if "Distributing maxAllowedWatermark" in line], gateway_log
    # Nor the committers' gauge collision, a WARN per Kafka sink at every checkpoint (FLINK-35321).
    gateway = gateway_log.read_text(errors="replace")
    assert "Completed checkpoint" in gateway, f"no checkpoint completed in {gateway_log}"
    assert "'pendingCommittables'" not in gateway, gateway_log
