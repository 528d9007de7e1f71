"""Issue 16, item 3: a session cluster of two TaskManagers (one slot each), the minor-update job submitted at
parallelism 2 on two-partition topics: its subtasks run in both TaskManagers and its rows, weight versions and
dead letters are the plain-Python reference's, which parallelism 1 also gives (test_submit.py), for DBGD
and for PDGD."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from drnflow.stack import process
from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig
from drnflow.stack.kafka import TopicSettings, create_topics
from jobs.minor_update_config import MinorUpdateConfig
from models.reference import ReferenceConfig, run_reference
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import (
    ATTRIBUTION_MS,
    OOO_MS,
    T0,
    WINDOW_MS,
    hand_written_stream,
    initial_major,
    publish,
    read_committed,
)
from tests.integration.test_submit import (
    _cancel_all,
    cli,
    flush_impression,
    job_flags,
    produce,
    reference_of,
    row_key,
    start_topics,
    wait_until,
    weights_of,
    win_rates_of,
)

pytestmark = [pytest.mark.integration, pytest.mark.faults]


@pytest.fixture(scope="module")
def two_tms(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkCluster]:
    c = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path_factory.mktemp("flink-two-tms"),
                                        rest_port=process.free_port(), rpc_port=process.free_port(),
                                        taskmanagers=2, task_slots=1))
    try:
        status = c.start()
        assert status.taskmanagers == 2, status
        yield c
    finally:
        _cancel_all(c.config.jobmanager)
        c.stop()


def _taskmanagers_of(jobmanager: str, job_id: str) -> set[str]:
    """The TaskManagers the job's subtasks run in (Flink REST: /jobs/:id/vertices/:vid)."""
    from drnflow.tools.flink_jobs import rest

    tms: set[str] = set()
    for vertex in rest(jobmanager, f"/jobs/{job_id}")["vertices"]:
        for sub in rest(jobmanager, f"/jobs/{job_id}/vertices/{vertex['id']}").get("subtasks", []):
            tms.add(str(sub.get("taskmanager-id")))
    return tms


def _run(two_tms: FlinkCluster, bootstrap: str, tmp: Path, capsys: Any, imps: list[dict[str, Any]],
         clicks: list[dict[str, Any]], reference: Callable[[list[dict[str, Any]]], Any], names: TopicNames,
         *extra: str) -> tuple[Any, list[dict[str, Any]]]:
    """Submit at parallelism 2, feed the stream, wait for the reference's rows (the reference of what the job
    published on model-weights: a seed MAJOR it made is the reference's too) and dead letters, cancel;
    (reference, model-weights)."""
    jm = two_tms.config.jobmanager
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, "--parallelism", "2",
                         *job_flags(bootstrap, names.prefix, tmp), *extra)
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]
    assert len(_taskmanagers_of(jm, job_id)) == 2, "parallelism 2 on one-slot TaskManagers uses both"
    produce(bootstrap, names, [*imps, flush_impression()], clicks)

    def weights() -> list[dict[str, Any]]:
        return [serde.decode("ModelWeights", r.value) for r in read_committed(bootstrap, names.model_weights)]

    expected = len(reference(weights()).win_rates)  # as many rows whatever the seed MAJORs' bytes

    def rows() -> list[dict[str, Any]]:
        got = [w for w in (serde.decode("WinRate", r.value) for r in read_committed(bootstrap, names.win_rates))
               if w["model_id"] != "flush"]
        return got if len(got) >= expected else []

    got = wait_until("the reference's rows", rows, timeout_s=240)
    ref = reference(weights())
    assert sorted(got, key=row_key) == sorted(ref.win_rates, key=row_key)
    spread = {r.partition for r in read_committed(bootstrap, names.impressions)}
    assert spread == {0, 1}, "the input really was spread over two partitions"
    dead = wait_until("the reference's dead letters", lambda: d if len(d := sorted(
        serde.decode("DeadLetter", r.value)["reason"] for r in read_committed(bootstrap, names.dead_letters)))
        >= len(ref.dead_letters) else [], timeout_s=60)
    assert dead == sorted(d["reason"] for d in ref.dead_letters)
    code, _, err = cli(capsys, "cancel", job_id, "--jobmanager", jm)
    assert code == 0, err
    return ref, weights()


def _topics(bootstrap: str, major: dict[str, Any]) -> TopicNames:
    names = TopicNames(f"par{uuid.uuid4().hex[:8]}.")
    create_topics(bootstrap, names, TopicSettings(partitions=2))
    publish(bootstrap, names.model_weights, [(b"m1", serde.encode("ModelWeights", major))])
    return names


def test_dbgd_at_parallelism_2_on_two_taskmanagers_is_the_reference(
        two_tms: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    major = initial_major(MinorUpdateConfig(seed=11), "m1", 1, T0 - 1)
    names = _topics(kafka_bootstrap, major)
    stream = hand_written_stream()
    cfg = MinorUpdateConfig(topic_prefix=names.prefix, window=WINDOW_MS, attribution_window=ATTRIBUTION_MS,
                            out_of_orderness=OOO_MS, seed=3, alpha=0.1)
    # A click horizon the flush impression passes: the click of no request is UNKNOWN_REQUEST before the end.
    ref_cfg = ReferenceConfig(window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS, dbgd=cfg.dbgd_config(),
                              impressions_topic=names.impressions, clicks_topic=names.clicks, click_horizon_ms=30_000)

    def reference(weights: list[dict[str, Any]]) -> Any:  # m2 has no MAJOR: the one the job seeds
        seeded = [w for w in weights if w["model_id"] == "m2" and w["kind"] == "MAJOR"]
        return run_reference(stream.impressions, stream.clicks, [major, *seeded], ref_cfg)

    ref, weights = _run(two_tms, kafka_bootstrap, tmp_path, capsys, stream.impressions, stream.clicks, reference,
                        names, "--click-horizon", "30 s")
    assert [w for w in weights if w["kind"] == "MINOR" and w["model_id"] == "m1"] == \
        [w for w in ref.model_weights if w["model_id"] == "m1"]
    assert "UNKNOWN_REQUEST" in {d["reason"] for d in ref.dead_letters}, "the horizon passed: a click of no request"


def test_pdgd_at_parallelism_2_on_two_taskmanagers_is_the_reference(
        two_tms: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from tests.integration.test_minor_update import job_config, major_m1
    from tests.integration.test_pdgd_job import pdgd_stream

    cfg = replace(job_config(kafka_bootstrap, "unused.", tmp_path), learner="pdgd", learning_rate=0.2)
    major = major_m1(cfg)
    names = _topics(kafka_bootstrap, major)
    stream = pdgd_stream(cfg)
    stream.impressions.pop()  # the stream's own flush; _run sends one
    ref_cfg = ReferenceConfig(window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS, dbgd=cfg.dbgd_config(),
                              pdgd=cfg.pdgd_config(), impressions_topic=names.impressions, clicks_topic=names.clicks)
    ref, weights = _run(two_tms, kafka_bootstrap, tmp_path, capsys, stream.impressions, stream.clicks,
                        lambda _: run_reference(stream.impressions, stream.clicks, [major], ref_cfg), names,
                        "--learner", "pdgd", "--learning-rate", "0.2")
    minors = [w for w in weights if w["kind"] == "MINOR"]
    assert len(minors) >= 3 and minors == ref.model_weights


@pytest.mark.parametrize("before, after", [(1, 2), (2, 1)])
def test_a_savepoint_restored_at_another_parallelism_gives_the_reference(
        two_tms: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        before: int, after: int) -> None:
    """A user rescales: stop with a savepoint while windows are open (requests held, partial counts not yet
    sent), resubmit at another parallelism from it. Flink moves each request's state and timers with its key
    group and splits the attribution subtasks' partial counts among the new subtasks; every window must still
    be counted once, whole, as the reference counts it, and every weight version be the reference's."""
    jm = two_tms.config.jobmanager
    # One partition: the p1 job reads the requests in one order every run, so which request registered a
    # window's timers is the same every run too.
    names, major = start_topics(kafka_bootstrap, f"par{uuid.uuid4().hex[:8]}.")
    # Windows 2 and 3 are open at the stop (requests held, partial counts not yet sent). The rest of window 3
    # comes after the restore and then nothing until the flush impression far ahead, as traffic after a quiet
    # spell. One model and one explore seed a window, as DRN serves: one partial count a window, sent by
    # the subtask it lands on, whose keys need not hold that window's timers.
    full = hand_written_stream(n_windows=4)
    imps = [r for r in full.impressions if r["model_id"] == "m1" and int(r["explore_seed"]) < 200]
    kept = {r["request_id"] for r in imps}
    stream = replace(full, impressions=imps, clicks=[c for c in full.clicks if c["request_id"] in kept])
    split = T0 + 3 * WINDOW_MS + WINDOW_MS // 2
    flags = job_flags(kafka_bootstrap, names.prefix, tmp_path)
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, "--parallelism", str(before), *flags)
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]
    produce(kafka_bootstrap, names, [r for r in stream.impressions if r["event_time"] < split],
            [r for r in stream.clicks if r["event_time"] < split])
    wait_until("a decided window before the stop", lambda: win_rates_of(kafka_bootstrap, names), timeout_s=240)
    code, out, err = cli(capsys, "stop", job_id, "--jobmanager", jm, "--savepoint", str(tmp_path / "sp"))
    assert code == 0, err
    savepoint = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("savepoint "))
    rows_before = len(win_rates_of(kafka_bootstrap, names))
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, "--parallelism", str(after),
                         "--from-savepoint", savepoint, *flags)
    assert code == 0, err
    resumed = out.split("job id")[1].split()[0]
    produce(kafka_bootstrap, names, [r for r in stream.impressions if r["event_time"] >= split] + [flush_impression()],
            [r for r in stream.clicks if r["event_time"] >= split])

    ref = reference_of(names, stream.impressions, stream.clicks, major)
    assert rows_before < len(ref.win_rates), "some windows must be decided after the restore"
    wait_until("the reference's rows", lambda: len(win_rates_of(kafka_bootstrap, names)) >= len(ref.win_rates),
               timeout_s=240)
    time.sleep(3)  # a window counted twice would show a second row right after the first
    got = win_rates_of(kafka_bootstrap, names)
    assert sorted(got, key=row_key) == sorted(ref.win_rates, key=row_key)
    minors = [w for w in weights_of(kafka_bootstrap, names) if w["kind"] == "MINOR" and w["model_id"] != "flush"]
    assert minors == [w for w in ref.model_weights if w["kind"] == "MINOR"]
    code, _, err = cli(capsys, "cancel", resumed, "--jobmanager", jm)
    assert code == 0, err
