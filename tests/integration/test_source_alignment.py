"""A job behind its topics reads the impressions and clicks sources in step (watermark alignment,
--max-source-drift), on the standalone session cluster as `drnflow submit` runs it.

Without alignment each source reads at its own pace, so in a backlog one source ran hours of event time
ahead, and every click read before its impression waited in state (unaligned soaks at 40k events/s held
420k clicks and 979k requests, or ran 12.5 h apart and out of heap; README, "A soak test"). The job's
`impressions-lead-watermarks` operator exports how far apart the two inputs run (the gauge
maxSourceSkewMs); here it is read over Flink's REST API while the job works through a 10-minute backlog,
once with a 30 s drift and once with alignment off, the control that shows this backlog does drift. Both
runs must give the reference's WinRates: alignment changes when records are read, never what they count."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drnflow.stack.flink import FlinkCluster, rest_get
from operators.sim_producer import EventWriter
from schemas.topics import TopicNames
from tests.integration.minor_update_data import T0, WINDOW_MS, impression
from tests.integration.test_submit import (
    cli,
    job_flags,
    job_story,
    reference_of,
    row_key,
    session_cluster,
    start_topics,
    wait_until,
    win_rates_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.slow]  # about 2 min: a cluster and two jobs over a backlog

#: 120,000 impressions over 10 min of event time, 200 a second, and 100 clicks a second: production's density.
#: A source reads on for up to a watermark interval past its limit, and what is in flight still arrives, so
#: the skew it shows is the drift plus that many records' worth of event time: at a sparse test density
#: (10 clicks an event-second) that alone was 14 min, and the test could not tell.
N_IMPRESSIONS = 120_000
STEP_MS = 5
SLOTS = 8
FEATURES = 16  # per slot: the impressions are large, the clicks small, as in production
DRIFT_MS = 30_000


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkCluster]:
    yield from session_cluster(tmp_path_factory, "flink-alignment")


def backlog() -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Impressions of m1 v1 every STEP_MS (two explore seeds per window), a click on every other one: per
    record the clicks source covers twice the impressions' event time, so unaligned it runs ahead."""
    impressions, clicks = [], []
    for i in range(N_IMPRESSIONS):
        t = T0 + i * STEP_MS
        w = (t - T0) // WINDOW_MS
        rid = f"b{i:05d}"
        impressions.append({
            "request_id": rid, "user_id": f"u{i % 500}", "event_time": t, "model_id": "m1", "model_version": 1,
            "explore_seed": 100 + w if i % 3 else 200 + w,
            "slots": [{"item_id": f"{rid}/i{k}", "position": k, "team": "EXPLORE" if (i + k) % 2 else "CURRENT",
                       "features": [0.01 * (i % 97) + 0.001 * j for j in range(FEATURES)], "explore_seed": None}
                      for k in range(SLOTS)],
            "state_features": [1.0, 2.0],
        })
        if i % 2 == 0:
            clicks.append({"request_id": rid, "item_id": f"{rid}/i{(i // 2) % SLOTS}", "event_time": t + 400,
                           "user_id": None})
    return impressions, clicks


def write(bootstrap: str, names: TopicNames, impressions: list[dict[str, Any]],
          clicks: list[dict[str, Any]]) -> None:
    writer = EventWriter(bootstrap, names, client_id="test-source-alignment")
    try:
        for rec in impressions:
            writer.send("impression", rec)
        for rec in clicks:
            writer.send("click", rec)
        writer.flush()
        writer.raise_first_error()
    finally:
        writer.close()


def source_skew_ms(web_ui: str, job_id: str) -> dict[str, int]:
    """The job's sourceSkewMs and maxSourceSkewMs gauges, the largest over subtasks ({}: not reported yet)."""
    def get(path: str) -> Any:
        return rest_get(f"{web_ui}/jobs/{job_id}{path}")

    got: dict[str, int] = {}
    for vertex in (get("") or {}).get("vertices", []):
        path = f"/vertices/{vertex['id']}/metrics"
        ids = [m["id"] for m in get(path) or [] if m["id"].endswith(("SourceSkewMs", ".sourceSkewMs"))]
        for m in get(f"{path}?get={','.join(ids)}") or [] if ids else []:
            if m.get("value") not in (None, ""):
                name, value = m["id"].rsplit(".", 1)[1], int(float(m["value"]))
                got[name] = max(got.get(name, value), value, key=abs)
    return got


def run_job(cluster: FlinkCluster, bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
            drift: str) -> int:
    """Stream the backlog through a submitted job with --max-source-drift `drift`; its largest source skew."""
    jm = cluster.config.jobmanager
    prefix = f"align{uuid.uuid4().hex[:8]}."
    names, major = start_topics(bootstrap, prefix)
    impressions, clicks = backlog()
    expected = reference_of(names, impressions, clicks, major).win_rates
    assert len(expected) >= 2 * (N_IMPRESSIONS * STEP_MS // WINDOW_MS) - 2  # two seeds a window, all decided
    # Past the last window's end + attribution window, so every window is decided; close to the last records,
    # so its jump is a small skew of its own.
    flush = impression("flush", T0 + N_IMPRESSIONS * STEP_MS + WINDOW_MS, "flush", 0, 1, "E")
    write(bootstrap, names, [*impressions, flush], clicks)
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm,
                         *job_flags(bootstrap, prefix, tmp_path / prefix), "--max-source-drift", drift)
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]
    samples: list[dict[str, int]] = []

    def done() -> list[dict[str, Any]]:
        if skew := source_skew_ms(cluster.config.web_ui, job_id):
            samples.append(skew)
        rows = win_rates_of(bootstrap, names)
        return rows if len(rows) >= len(expected) else []

    got = wait_until(f"every window with --max-source-drift {drift}", done, timeout_s=240,
                     explain=lambda: job_story(jm, job_id, win_rates_of(bootstrap, names), expected))
    assert sorted(got, key=row_key) == sorted(expected, key=row_key)
    code, _, err = cli(capsys, "stop", job_id, "--jobmanager", jm)
    assert code == 0, err
    restarts: Any = rest_get(f"{cluster.config.web_ui}/jobs/{job_id}/metrics?get=numRestarts") or []
    assert [int(m["value"]) for m in restarts] == [0], f"the job restarted, so its gauges restarted too: {restarts}"
    assert samples, "the job never reported its source skew"
    return max(s["maxSourceSkewMs"] for s in samples)


def test_a_backlog_is_read_with_the_sources_in_step(
        cluster: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    aligned = run_job(cluster, kafka_bootstrap, tmp_path, capsys, f"{DRIFT_MS} ms")
    control = run_job(cluster, kafka_bootstrap, tmp_path, capsys, "0 ms")
    with capsys.disabled():
        print(f"largest source skew: {aligned} ms aligned (drift {DRIFT_MS} ms), {control} ms without alignment")
    assert control >= 4 * DRIFT_MS, f"the control drifted only {control} ms: this backlog shows nothing"
    # The drift plus what a source reads in one 50 ms watermark interval and what is in flight: 42-84 s apart
    # here (the more so the busier the machine) against 337-448 s unaligned. Judged against the control, so
    # neither a faster machine (more read in 50 ms) nor a busier one fails it; broken alignment gives 1x.
    assert aligned * 2 <= control, f"aligned within {DRIFT_MS} ms the sources still ran {aligned} ms apart"
    # Aligned, the SourceCoordinator announces every 100 ms per source; the cluster's log4j drops just that.
    coordinator = [line for f in sorted(cluster.log_dir.glob("*standalonesession*.log"))
                   for line in f.read_text(errors="replace").splitlines() if "SourceCoordinator" in line]
    assert any("Starting split enumerator" in line for line in coordinator), "the coordinator's INFO lines are gone"
    assert not [line for line in coordinator if "Distributing maxAllowedWatermark" in line]
    # Each sink's committer warns of its gauge's name collision at every checkpoint; that warning goes too,
    # while the collision the sink writers warn of once at start stays (the filter drops one metric's only).
    jm_log = "\n".join(f.read_text(errors="replace") for f in cluster.log_dir.glob("*standalonesession*.log"))
    assert "Completed checkpoint" in jm_log, "no checkpoint completed: the committers never registered again"
    collisions = [line for f in sorted(cluster.log_dir.glob("*taskexecutor*.log"))
                  for line in f.read_text(errors="replace").splitlines() if "Name collision" in line]
    assert any("'currentSendTime'" in line for line in collisions), "the metric group's other warnings are gone"
    assert not [line for line in collisions if "'pendingCommittables'" in line]
