"""A gap in traffic longer than the idleness timeout must not stop the minor-update job's outputs.

Issue 11, item 1: with both data sources idle, the join of window rows and model-weights took its
watermark from model-weights alone, which jumped to Long.MAX - 1; every later window then registered its
timer in the past and no WinRate, MINOR or trigger was written again, while the job stayed RUNNING.
This runs the unbounded job on a mini-cluster, pauses the producer for five idleness timeouts, and
requires that the windows after the gap are decided like those before it.
"""

from __future__ import annotations

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
from tests.integration.minor_update_data import (
    ATTRIBUTION_MS,
    OOO_MS,
    T0,
    WINDOW_MS,
    Stream,
    click,
    impression,
    initial_major,
    produce_stream,
    publish,
    read_committed,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]

IDLENESS_MS = 1_000


def windows(first: int, last: int) -> Stream:
    """Four impressions per window, explore winning two of them; clicks one second after."""
    imps: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    for w in range(first, last + 1):
        for j in range(4):
            rid, t = f"w{w}-{j}", T0 + w * WINDOW_MS + 1_000 + j * 2_000
            imps.append(impression(rid, t, "m1", 1, 100, "EC"))
            if j % 2 == 0:
                clicks.append(click(rid, f"{rid}/i0", t + 1_000))
    return Stream(impressions=imps, clicks=clicks)


def decided_windows(bootstrap: str, names: TopicNames) -> set[int]:
    rows = [serde.decode("WinRate", r.value) for r in read_committed(bootstrap, names.win_rates, timeout_s=5)]
    return {(int(r["window_start"]) - T0) // WINDOW_MS for r in rows}


def wait_for(bootstrap: str, names: TopicNames, wanted: set[int], job: subprocess.Popen[str],
             timeout_s: float) -> set[int]:
    deadline = time.monotonic() + timeout_s
    got: set[int] = set()
    while time.monotonic() < deadline and job.poll() is None:
        got = decided_windows(bootstrap, names)
        if wanted <= got:
            return got
        time.sleep(1)
    return got


def test_windows_after_a_gap_longer_than_idleness_are_still_decided(kafka_bootstrap: str, tmp_path: Path) -> None:
    names = TopicNames(f"gap{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names)
    from jobs.minor_update_config import MinorUpdateConfig

    cfg = MinorUpdateConfig(seed=11, initial_state_dim=4, initial_action_dim=3)
    publish(kafka_bootstrap, names.model_weights,
            [(b"m1", serde.encode("ModelWeights", initial_major(cfg, "m1", 1, T0 - 1)))])
    log = (tmp_path / "job.log").open("w")
    job = subprocess.Popen(
        [sys.executable, "-m", "jobs.minor_update", "--bootstrap", kafka_bootstrap, "--topic-prefix", names.prefix,
         "--window", f"{WINDOW_MS} ms", "--attribution-window", f"{ATTRIBUTION_MS} ms",
         "--out-of-orderness", f"{OOO_MS} ms", "--idleness", f"{IDLENESS_MS} ms", "--checkpoint-interval",
         "500 ms", "--checkpoint-dir", str(tmp_path / "ckpt")],
        cwd=PROJECT_ROOT, stdout=log, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    try:
        # Windows 0-5; the watermark (last event - out-of-orderness) makes 0-3 final.
        produce_stream(kafka_bootstrap, names, windows(0, 5))
        before = wait_for(kafka_bootstrap, names, {0, 1, 2, 3}, job, timeout_s=150)
        assert {0, 1, 2, 3} <= before, f"no windows before the gap: {sorted(before)}; see {tmp_path / 'job.log'}"
        time.sleep(5 * IDLENESS_MS / 1000)  # every source goes idle
        produce_stream(kafka_bootstrap, names, windows(6, 12))
        after = wait_for(kafka_bootstrap, names, set(range(4, 11)), job, timeout_s=90)
        assert set(range(4, 11)) <= after, (
            f"windows after the gap never decided: got {sorted(after)}; see {tmp_path / 'job.log'}")
        assert job.poll() is None, "the unbounded job must still be running"
    finally:
        import os
        import signal

        if job.poll() is None:
            os.killpg(job.pid, signal.SIGTERM)
            try:
                job.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(job.pid, signal.SIGKILL)
                job.wait(10)
        log.close()
