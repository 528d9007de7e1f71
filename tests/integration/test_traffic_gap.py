"""Gaps in traffic longer than the idleness timeout must not stop or corrupt the minor-update job.

Issue 11, item 1: with both data sources idle, the join of window rows and model-weights took its
watermark from model-weights alone, which jumped to Long.MAX - 1; every later window then registered its
timer in the past and no WinRate, MINOR or trigger was written again, while the job stayed RUNNING.

After a gap (a night, a broker outage) the two backlogs come back one after the other. When the clicks
came first, their watermark alone passed the impressions still in the backlog and those went LATE (seen
after a 16 s broker restart under a submitted job); when the impressions came first, their clicks went
LATE. ImpressionsLeadWatermarks holds the watermark until the impressions are back, and then gives the
clicks one idleness timeout to catch up. One unbounded job on a mini-cluster goes through both orders.
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

IDLENESS_MS = 3_000


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


def win_rates(bootstrap: str, names: TopicNames) -> dict[int, dict[str, Any]]:
    rows = [serde.decode("WinRate", r.value) for r in read_committed(bootstrap, names.win_rates, timeout_s=5)]
    return {(int(r["window_start"]) - T0) // WINDOW_MS: r for r in rows if r["model_id"] == "m1"}


def decided_windows(bootstrap: str, names: TopicNames) -> set[int]:
    return set(win_rates(bootstrap, names))


def dead_letter_reasons(bootstrap: str, names: TopicNames) -> list[str]:
    return [str(serde.decode("DeadLetter", r.value)["reason"])
            for r in read_committed(bootstrap, names.dead_letters, timeout_s=5)]


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


def test_windows_after_gaps_are_decided_whichever_backlog_comes_first(kafka_bootstrap: str, tmp_path: Path) -> None:
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

        # Gap, then the clicks' backlog first: clicks alone must not move event time past the impressions.
        time.sleep(5 * IDLENESS_MS / 1000)
        backlog = windows(6, 12)
        produce_stream(kafka_bootstrap, names, Stream(clicks=backlog.clicks))
        time.sleep(3 * IDLENESS_MS / 1000)  # long enough for the clicks' watermark to reach window 12
        produce_stream(kafka_bootstrap, names, Stream(impressions=backlog.impressions))
        after = wait_for(kafka_bootstrap, names, set(range(4, 11)), job, timeout_s=90)
        assert set(range(4, 11)) <= after, (
            f"windows after the gap never decided: got {sorted(after)}; see {tmp_path / 'job.log'}")

        # Gap, then the impressions' backlog first: their clicks, a second behind, must still count.
        time.sleep(5 * IDLENESS_MS / 1000)
        backlog = windows(13, 19)
        produce_stream(kafka_bootstrap, names, Stream(impressions=backlog.impressions))
        time.sleep(IDLENESS_MS / 3000)
        produce_stream(kafka_bootstrap, names, Stream(clicks=backlog.clicks))
        # The end of a burst: one impression far ahead, then silence. Both inputs go idle at about the same
        # time; the clicks' going idle must release the impressions' watermark, whichever goes first.
        produce_stream(kafka_bootstrap, names, Stream(impressions=[impression("flush", T0 + 100 * WINDOW_MS,
                                                                              "flush", 0, 1, "E")]))
        after = wait_for(kafka_bootstrap, names, set(range(11, 20)), job, timeout_s=90 + 2 * IDLENESS_MS / 1000)
        assert set(range(11, 20)) <= after, (
            f"windows after the second gap never decided: got {sorted(after)}; see {tmp_path / 'job.log'}")
        assert job.poll() is None, "the unbounded job must still be running"

        rows = win_rates(kafka_bootstrap, names)
        counts = {w: (rows[w]["impressions"], rows[w]["explore_wins"], rows[w]["no_clicks"]) for w in range(20)}
        wrong = {w: c for w, c in counts.items() if c != (4, 2, 2)}
        assert not wrong, f"windows with lost impressions or clicks (impressions, explore wins, no clicks): {wrong}"
        assert dead_letter_reasons(kafka_bootstrap, names) == [], "no valid record may be dead-lettered"
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
