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


def wait_until(what: str, check: Any, procs: list[subprocess.Popen[bytes]], timeout_s: float, logs: Path) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        got = check()
        if got:
            return got
        dead = [p.args for p in procs if p.poll() is not None]
        assert not dead, f"{dead} exited while waiting for {what}; logs in {logs}"
        time.sleep(2)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}; logs in {logs}")


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

    def majors() -> list[dict[str, Any]]:
        return [v for v in versions(kafka_bootstrap, names) if v["kind"] == "MAJOR" and v["version"] > 1]

    def minors_on(version: int) -> list[dict[str, Any]]:
        return [v for v in versions(kafka_bootstrap, names) if v["kind"] == "MINOR" and v["version"] > version]

    try:
        drnflow(*sim, "--impressions", "900")  # 15 min of event time: a trigger at 10 min
        first = wait_until("a first MAJOR above v1", majors, procs, 240, tmp_path)[0]
        drnflow(*sim, "--impressions", "900", "--continue")  # serves the new MAJOR; the next trigger at 20 min
        wait_until(f"a MINOR above MAJOR v{first['version']}", lambda: minors_on(first["version"]), procs, 240,
                   tmp_path)
        second = wait_until("a second MAJOR", lambda: majors()[1:], procs, 240, tmp_path)[0]
        drnflow(*sim, "--impressions", "900", "--continue")
        on_second = wait_until(f"a MINOR above MAJOR v{second['version']}", lambda: minors_on(second["version"]),
                               procs, 240, tmp_path)
    finally:
        stop(major)
        stop(job)
    lineage = versions(kafka_bootstrap, names)
    numbers = [int(v["version"]) for v in lineage]
    assert len(numbers) == len(set(numbers)), f"a version number was used twice: {numbers}"
    assert first["parent_version"] is not None and second["parent_version"] is not None
    assert second["version"] > first["version"] > 1
    # The job rebased on each MAJOR: MINORs after it descend from it, not from the versions before it.
    by_version = {int(v["version"]): v for v in lineage}

    def root(v: dict[str, Any]) -> int:
        while v["kind"] == "MINOR":
            v = by_version[int(v["parent_version"])]
        return int(v["version"])

    assert {root(v) for v in on_second} == {second["version"]}, [(v["version"], v["parent_version"]) for v in lineage]
    served = [serde.decode("Impression", r.value) for r in read_committed(kafka_bootstrap, names.impressions, 10)]
    assert min(int(i["model_version"]) for i in served[-900:]) >= second["version"], "the ranker follows the MAJORs"
