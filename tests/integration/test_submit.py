"""`drnflow submit | jobs | stop` against a real standalone Flink cluster (the one `drnflow up --cluster`
starts) and the session's broker: submit -> RUNNING in `flink list` -> stop with a savepoint -> resume from
it, and the resumed job continues with the same weights (its outputs equal the plain-Python reference of
the whole stream)."""

from __future__ import annotations

import contextlib
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from drnflow.cli import main
from drnflow.stack import process
from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig, flink_cli
from drnflow.stack.kafka import create_topics
from jobs.minor_update_config import MinorUpdateConfig
from models.reference import ReferenceConfig, run_reference
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import (
    ATTRIBUTION_MS,
    OOO_MS,
    T0,
    WINDOW_MS,
    click,
    hand_written_stream,
    impression,
    initial_major,
    publish,
    read_committed,
)

pytestmark = pytest.mark.integration


def session_cluster(tmp_path_factory: pytest.TempPathFactory, tag: str) -> Iterator[FlinkCluster]:
    """A standalone session cluster under a fresh temp dir named `tag`, on free ports; always stopped."""
    state = tmp_path_factory.mktemp(tag)
    c = FlinkCluster(FlinkClusterConfig(state_dir=state, rest_port=process.free_port(),
                                        rpc_port=process.free_port()))
    try:
        c.start()
        yield c
    finally:
        c.stop()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FlinkCluster]:
    """One standalone session cluster for this module."""
    yield from session_cluster(tmp_path_factory, "flink-submit")


def cli(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def flink_list(c: FlinkCluster) -> str:
    proc = subprocess.run(["bash", str(flink_cli()), "list", "-m", c.config.jobmanager], env=c.env(),
                          capture_output=True, text=True, timeout=120)
    return proc.stdout


def job_flags(bootstrap: str, prefix: str, tmp: Path) -> list[str]:
    return ["--bootstrap", bootstrap, "--topic-prefix", prefix, "--window", f"{WINDOW_MS} ms",
            "--attribution-window", f"{ATTRIBUTION_MS} ms", "--out-of-orderness", f"{OOO_MS} ms",
            "--alpha", "0.1", "--eta", "0.5", "--seed", "3",
            "--checkpoint-interval", "1 s", "--checkpoint-dir", str(tmp / "ckpt"), "--job-name", f"sub-{prefix}"]


def produce(bootstrap: str, names: TopicNames, imps: list[dict[str, Any]], clicks: list[dict[str, Any]]) -> None:
    """Impressions and clicks interleaved in event-time order, as live traffic arrives (a batch of
    impressions sent more than --idleness ahead of its clicks after a pause would make those clicks LATE:
    the job's idleness semantics, design.md §4, not a fault)."""
    import heapq

    from kafka import KafkaProducer

    # heapq.merge keeps each topic's own order (the reference reads topic order) and interleaves by time.
    events = heapq.merge([(int(r["event_time"]), 0, names.impressions, "Impression", r) for r in imps],
                         [(int(r["event_time"]), 1, names.clicks, "Click", r) for r in clicks], key=lambda e: e[:2])
    # Right after a broker restart its partitions may still be electing a leader: retry, and check every
    # send (an unchecked future loses the record silently, and the test would wait for windows forever).
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", retries=20, retry_backoff_ms=500,
                             max_in_flight_requests_per_connection=1)
    try:
        futures = [producer.send(topic, key=r["request_id"].encode(), value=serde.encode(schema, r))
                   for _, _, topic, schema, r in events]
        producer.flush()
        for f in futures:
            f.get(timeout=60)
    finally:
        producer.close()


def weights_of(bootstrap: str, names: TopicNames) -> list[dict[str, Any]]:
    return [serde.decode("ModelWeights", r.value) for r in read_committed(bootstrap, names.model_weights)]


def start_topics(bootstrap: str, prefix: str) -> tuple[TopicNames, dict[str, Any]]:
    """The six topics of `prefix`, with m1's MAJOR v1 published on model-weights."""
    names = TopicNames(prefix)
    create_topics(bootstrap, names)
    major = initial_major(MinorUpdateConfig(seed=11), "m1", 1, T0 - 1)
    publish(bootstrap, names.model_weights, [(b"m1", serde.encode("ModelWeights", major))])
    return names, major


def flush_impression() -> dict[str, Any]:
    """One impression far ahead: it pushes the watermark past every window of a test stream."""
    return impression("flush", T0 + 100 * WINDOW_MS, "flush", 0, 1, "E")


def win_rates_of(bootstrap: str, names: TopicNames) -> list[dict[str, Any]]:
    """Every committed WinRate but the flush model's."""
    rows = [serde.decode("WinRate", r.value) for r in read_committed(bootstrap, names.win_rates)]
    return [r for r in rows if r["model_id"] != "flush"]


def reference_of(names: TopicNames, impressions: list[dict[str, Any]], clicks: list[dict[str, Any]],
                 major: dict[str, Any]) -> Any:
    """The plain-Python reference with job_flags' settings (seed 3, alpha 0.1) over the stream."""
    cfg = MinorUpdateConfig(topic_prefix=names.prefix, window=WINDOW_MS, attribution_window=ATTRIBUTION_MS,
                            out_of_orderness=OOO_MS, seed=3, alpha=0.1)
    return run_reference(impressions, clicks, [major], ReferenceConfig(
        window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS, dbgd=cfg.dbgd_config(),
        impressions_topic=names.impressions, clicks_topic=names.clicks))


def row_key(r: dict[str, Any]) -> tuple[Any, ...]:
    return (r["model_id"], r["window_start"], r["model_version"], r["explore_seed"])


def _cancel_all(jobmanager: str) -> None:
    """Cancel whatever a failed test left running, so its slots do not fail the next test."""
    from drnflow.errors import CommandError
    from drnflow.tools.flink_jobs import cancel, list_jobs

    for j in list_jobs(jobmanager):
        if j.state not in ("FINISHED", "CANCELED", "FAILED"):
            with contextlib.suppress(CommandError):  # it ended between the listing and the cancel
                cancel(jobmanager, j.job_id)


@pytest.fixture(autouse=True)
def _no_job_left(request: pytest.FixtureRequest) -> Iterator[None]:
    yield
    if "cluster" in request.fixturenames:
        _cancel_all(request.getfixturevalue("cluster").config.jobmanager)


def wait_until(what: str, check: Any, timeout_s: float = 150.0, explain: Any = None) -> Any:
    """check() until it is truthy; on timeout, explain() (when given) says what the job was doing."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1.0)
    raise AssertionError(f"timed out waiting for {what}" + (f": {explain()}" if explain else ""))


def transactions_story(bootstrap: str, topic: str) -> str:
    """The topic's last stable offset against its high watermark, and the broker's open transactions: an
    open transaction holds every read_committed reader at its first offset."""
    from kafka import KafkaConsumer, TopicPartition

    from operators.jars import kafka_libs

    ends = {}
    for level in ("read_committed", "read_uncommitted"):
        c = KafkaConsumer(bootstrap_servers=bootstrap, isolation_level=level, enable_auto_commit=False)
        try:
            tps = [TopicPartition(topic, p) for p in sorted(c.partitions_for_topic(topic) or [])]
            ends[level] = {tp.partition: o for tp, o in c.end_offsets(tps).items()}
        finally:
            c.close()
    tool = ["java", "-cp", f"{kafka_libs()}/*", "org.apache.kafka.tools.TransactionsCommand", "--bootstrap-server",
            bootstrap]
    listed = subprocess.run([*tool, "list"], capture_output=True, text=True, timeout=60).stdout
    hanging = subprocess.run([*tool, "find-hanging", "--broker-id", "1"], capture_output=True, text=True,
                             timeout=60).stdout
    return f"{topic}: stable {ends['read_committed']} vs high {ends['read_uncommitted']}; " \
           f"transactions: {listed.strip()!r}; hanging: {hanging.strip()!r}"


def job_story(jobmanager: str, job_id: str, got: list[dict[str, Any]], expected: list[dict[str, Any]]) -> str:
    """The job's state, its failure causes and the rows it still owes: what a timed-out wait needs to say."""
    from drnflow.errors import CommandError
    from drnflow.tools.flink_jobs import job_exceptions, rest

    try:
        detail = rest(jobmanager, f"/jobs/{job_id}")
        state = f"{detail.get('state')} ({', '.join(str(v.get('status')) for v in detail.get('vertices', []))})"
    except CommandError as e:
        state = f"unknown ({e})"
    have = {row_key(r) for r in got}
    missing = [row_key(r) for r in expected if row_key(r) not in have]
    causes = job_exceptions(jobmanager, job_id)[:5]
    return (f"job {state}; {len(got)} of {len(expected)} rows {sorted(have)}, missing {missing[:8]}; "
            f"failures (newest first): {causes}; ")


def test_submit_stop_with_savepoint_and_resume_keeps_the_weights(
        cluster: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    jm = cluster.config.jobmanager
    prefix = f"sub{uuid.uuid4().hex[:8]}."
    names = TopicNames(prefix)
    create_topics(kafka_bootstrap, names)
    cfg = MinorUpdateConfig(bootstrap=kafka_bootstrap, topic_prefix=prefix, window=WINDOW_MS,
                            attribution_window=ATTRIBUTION_MS, out_of_orderness=OOO_MS, seed=3)
    major = initial_major(MinorUpdateConfig(seed=11), "m1", 1, T0 - 1)
    publish(kafka_bootstrap, names.model_weights, [(b"m1", serde.encode("ModelWeights", major))])
    stream = hand_written_stream()
    split = T0 + 2 * WINDOW_MS + WINDOW_MS // 2
    # A last impression and click far ahead push the watermark past every window of the stream.
    flush_imp = impression("flush", T0 + 100 * WINDOW_MS, "flush", 0, 1, "E")
    flush_click = click("flush-click", "x", T0 + 100 * WINDOW_MS)
    flags = job_flags(kafka_bootstrap, prefix, tmp_path)

    produce(kafka_bootstrap, names, [r for r in stream.impressions if r["event_time"] < split],
            [r for r in stream.clicks if r["event_time"] < split])
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, *flags)
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]
    assert f"http://{jm}/#/job/running/{job_id}" in out
    assert f"{job_id} : sub-{prefix} (RUNNING)" in flink_list(cluster)
    code, out, _ = cli(capsys, "jobs", "--jobmanager", jm)
    assert code == 0 and job_id in out and "RUNNING" in out

    minors_before = wait_until("a MINOR version before the stop",
                               lambda: [w for w in weights_of(kafka_bootstrap, names) if w["kind"] == "MINOR"])
    code, out, err = cli(capsys, "stop", job_id[:8], "--jobmanager", jm, "--savepoint", str(tmp_path / "sp"))
    assert code == 0, err
    savepoint = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("savepoint "))
    assert Path(savepoint.removeprefix("file:")).is_dir()
    assert f"{job_id} : sub-{prefix} (RUNNING)" not in flink_list(cluster)

    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, "--from-savepoint", savepoint, *flags)
    assert code == 0, err
    resumed = out.split("job id")[1].split()[0]
    assert resumed != job_id
    produce(kafka_bootstrap, names, [r for r in stream.impressions if r["event_time"] >= split] + [flush_imp],
            [r for r in stream.clicks if r["event_time"] >= split] + [flush_click])

    m2_major = wait_until("m2's seed MAJOR", lambda: [
        w for w in weights_of(kafka_bootstrap, names) if w["model_id"] == "m2" and w["kind"] == "MAJOR"])
    assert len(m2_major) == 1, "the job published one seed MAJOR for m2, and the resumed job did not redo it"
    ref = run_reference(stream.impressions, stream.clicks, [major, m2_major[0]], ReferenceConfig(
        window_ms=WINDOW_MS, attribution_window_ms=ATTRIBUTION_MS, dbgd=cfg.dbgd_config(),
        impressions_topic=names.impressions, clicks_topic=names.clicks))
    expected = [w for w in ref.model_weights if w["kind"] == "MINOR"]

    def minors_now() -> list[dict[str, Any]]:
        got = [w for w in weights_of(kafka_bootstrap, names) if w["kind"] == "MINOR" and w["model_id"] != "flush"]
        return got if len(got) >= len(expected) else []

    got = wait_until("every MINOR version of the stream", minors_now)
    assert len(minors_before) < len(expected), "some updates must come after the resume"
    for model in ("m1", "m2"):
        assert [w for w in got if w["model_id"] == model] == [w for w in expected if w["model_id"] == model]
    win_rates = [serde.decode("WinRate", r.value) for r in read_committed(kafka_bootstrap, names.win_rates)]
    key = lambda r: (r["model_id"], r["window_start"], r["model_version"], r["explore_seed"])  # noqa: E731
    assert sorted((r for r in win_rates if r["model_id"] != "flush"), key=key) == sorted(ref.win_rates, key=key)
    code, _, err = cli(capsys, "stop", resumed, "--jobmanager", jm, "--savepoint", str(tmp_path / "sp2"))
    assert code == 0, err


def test_bad_input_gets_one_sentence(cluster: FlinkCluster, kafka_bootstrap: str,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    jm = cluster.config.jobmanager
    dead = f"localhost:{process.free_port()}"
    cases = [
        (["jobs", "--jobmanager", dead], "no Flink cluster answers"),
        (["submit", "minor-update", "--jobmanager", dead, "--bootstrap", kafka_bootstrap], "no Flink cluster answers"),
        (["submit", "minor-update", "--jobmanager", jm, "--bootstrap", kafka_bootstrap, "--topic-prefix", "nope."],
         "topic 'nope.impressions' does not exist"),
        (["submit", "minor-update", "--jobmanager", jm, "--bootstrap", f"127.0.0.1:{process.free_port()}"],
         "cannot reach the Kafka broker"),
        (["submit", "minor-update", "--jobmanager", jm, "--window", "ten"], "bad job flags"),
        (["submit", "minor-update", "--jobmanager", jm, "--parallelism", "64"], "the job needs 64 task slots"),
        (["cancel", "0123456789abcdef0123456789abcdef", "--jobmanager", jm], "no job"),
        (["submit", "minor-update", "--jobmanager", jm, "--from-savepoint", "/no/such/savepoint"], "does not exist"),
        (["submit", "minor-update", "--jobmanager", jm, "--from-savepoint", "/tmp"], "is not a savepoint"),
        (["stop", "0123456789abcdef0123456789abcdef", "--jobmanager", jm], "no job"),
    ]
    for argv, sentence in cases:
        code, _, err = cli(capsys, *argv)
        assert code != 0, argv
        assert sentence in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)


@pytest.mark.slow
@pytest.mark.faults
def test_a_60s_pause_on_the_session_cluster_changes_nothing(
        cluster: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: a pause longer than the idleness timeout (default 30 s) silently stopped every output of a
    submitted job. Here traffic pauses 60 s; afterwards the windows are decided and every WinRate equals
    the reference of the whole, gap-free stream."""
    from tests.integration.test_traffic_gap import windows

    jm = cluster.config.jobmanager
    prefix = f"gap{uuid.uuid4().hex[:8]}."
    names, major = start_topics(kafka_bootstrap, prefix)
    before, after = windows(0, 5), windows(6, 12)
    produce(kafka_bootstrap, names, before.impressions, before.clicks)
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm,
                         *job_flags(kafka_bootstrap, prefix, tmp_path))
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]

    def win_rates() -> list[dict[str, Any]]:
        return win_rates_of(kafka_bootstrap, names)

    wait_until("the windows before the pause", lambda: len(win_rates()) >= 4)
    time.sleep(60)
    produce(kafka_bootstrap, names, [*after.impressions, flush_impression()], after.clicks)
    ref = reference_of(names, [*before.impressions, *after.impressions], [*before.clicks, *after.clicks], major)
    got = wait_until("every window after the pause", lambda: w if len(w := win_rates()) >= len(ref.win_rates) else [],
                     explain=lambda: job_story(jm, job_id, win_rates(), ref.win_rates))
    assert sorted(got, key=row_key) == sorted(ref.win_rates, key=row_key)
    code, _, err = cli(capsys, "stop", job_id, "--jobmanager", jm)
    assert code == 0, err


@pytest.mark.slow
def test_old_event_times_after_a_restore_are_late_and_the_job_keeps_running(
        cluster: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12: a resumed job fed a new run whose event times start again at the beginning crash-looped
    (`windows must arrive in event-time order`): watermarks are not in checkpoints. Now the old impressions
    are LATE dead letters, the job stays RUNNING, and its rows equal the reference of the stream without
    them."""
    from tests.integration.test_traffic_gap import windows

    jm = cluster.config.jobmanager
    prefix = f"late{uuid.uuid4().hex[:8]}."
    names, major = start_topics(kafka_bootstrap, prefix)
    before, after = windows(0, 5), windows(6, 9)
    old = windows(0, 3)
    for r in [*old.impressions, *old.clicks]:
        r["request_id"] = "again-" + r["request_id"]
    flags = job_flags(kafka_bootstrap, prefix, tmp_path)
    produce(kafka_bootstrap, names, before.impressions, before.clicks)
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, *flags)
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]

    def win_rates() -> list[dict[str, Any]]:
        return win_rates_of(kafka_bootstrap, names)

    wait_until("the windows before the stop", lambda: len(win_rates()) >= 4)
    code, out, err = cli(capsys, "stop", job_id, "--jobmanager", jm, "--savepoint", str(tmp_path / "sp"))
    assert code == 0, err
    savepoint = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("savepoint "))
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, "--from-savepoint", savepoint, *flags)
    assert code == 0, err
    resumed = out.split("job id")[1].split()[0]
    produce(kafka_bootstrap, names, old.impressions, old.clicks)
    produce(kafka_bootstrap, names, [*after.impressions, flush_impression()], after.clicks)

    ref = reference_of(names, [*before.impressions, *after.impressions], [*before.clicks, *after.clicks], major)
    got = wait_until("every window after the old records",
                     lambda: w if len(w := win_rates()) >= len(ref.win_rates) else [],
                     explain=lambda: job_story(jm, resumed, win_rates(), ref.win_rates))
    assert sorted(got, key=row_key) == sorted(ref.win_rates, key=row_key)
    dead = [serde.decode("DeadLetter", r.value) for r in read_committed(kafka_bootstrap, names.dead_letters)]
    late = sorted(d["raw_key"] for d in dead if d["reason"] == "LATE" and d["source_topic"] == names.impressions)
    assert late == sorted(r["request_id"].encode() for r in old.impressions), dead
    # Their clicks are LATE too, at once: they used to wait in state for a watermark of c.t + the click
    # horizon (24 h) that this stream never reaches, in no dead letter at all.
    late_clicks = sorted(d["raw_key"] for d in dead if d["source_topic"] == names.clicks)
    assert late_clicks == sorted(r["request_id"].encode() for r in old.clicks), dead
    assert {d["reason"] for d in dead if d["source_topic"] == names.clicks} == {"LATE"}, dead
    code, out, _ = cli(capsys, "jobs", "--jobmanager", jm)
    assert code == 0 and resumed in out and "RUNNING" in out
    code, _, err = cli(capsys, "stop", resumed, "--jobmanager", jm)
    assert code == 0, err


@pytest.mark.slow
@pytest.mark.faults
def test_a_broker_restart_under_a_submitted_job_changes_nothing(
        cluster: FlinkCluster, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: a broker outage used to lose rows. Here the job's own broker stops for 20 s in the middle of
    the stream and comes back on the same ports and data; the job fails over, restarts from its checkpoint,
    and every read_committed WinRate equals the reference of the whole stream (none lost, none doubled)."""
    from drnflow.stack.kafka import KafkaBroker, KafkaConfig
    from tests.integration.test_traffic_gap import windows

    broker = KafkaBroker(KafkaConfig(state_dir=tmp_path_factory.mktemp("restart-broker"), port=process.free_port(),
                                     controller_port=process.free_port()))
    broker.start()
    try:
        bootstrap = broker.config.bootstrap
        jm = cluster.config.jobmanager
        prefix = f"rb{uuid.uuid4().hex[:8]}."
        names, major = start_topics(bootstrap, prefix)
        before, after = windows(0, 5), windows(6, 11)
        produce(bootstrap, names, before.impressions, before.clicks)
        flags = job_flags(bootstrap, prefix, tmp_path)
        code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, *flags)
        assert code == 0, err
        job_id = out.split("job id")[1].split()[0]

        def win_rates() -> list[dict[str, Any]]:
            return win_rates_of(bootstrap, names)

        wait_until("the windows before the outage", lambda: len(win_rates()) >= 4)
        broker.stop()
        time.sleep(20)
        broker.start()
        produce(bootstrap, names, [*after.impressions, flush_impression()], after.clicks)
        ref = reference_of(names, [*before.impressions, *after.impressions], [*before.clicks, *after.clicks],
                           major)
        got = wait_until("every window after the outage",
                         lambda: w if len(w := win_rates()) >= len(ref.win_rates) else [], timeout_s=300,
                         explain=lambda: job_story(jm, job_id, win_rates(), ref.win_rates)
                         + transactions_story(bootstrap, names.win_rates))
        time.sleep(5)  # a duplicate would come after the last expected row
        got = win_rates()
        assert sorted(got, key=row_key) == sorted(ref.win_rates, key=row_key)
        minors = [w for w in (serde.decode("ModelWeights", r.value) for r in read_committed(bootstrap,
                  names.model_weights)) if w["kind"] == "MINOR" and w["model_id"] == "m1"]
        assert minors == [w for w in ref.model_weights if w["model_id"] == "m1" and w["kind"] == "MINOR"]
        code, out, _ = cli(capsys, "jobs", "--jobmanager", jm)
        assert code == 0 and job_id in out
        code, _, err = cli(capsys, "cancel", job_id, "--jobmanager", jm)
        assert code == 0, err
    finally:
        _cancel_all(cluster.config.jobmanager)
        broker.stop()


@pytest.mark.slow
@pytest.mark.faults
def test_six_taskmanager_kills_on_the_session_cluster_change_nothing(
        cluster: FlinkCluster, kafka_bootstrap: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 11: the old fixed-delay strategy (3 attempts, never reset) left the job FAILED on its fourth
    failure. Here the TaskManager is SIGKILLed six times while traffic arrives in chunks, a new one is started
    each time, and the job ends RUNNING with every read_committed WinRate equal to the reference."""
    import os
    import signal

    from drnflow.tools.flink_jobs import job_exceptions, rest
    from tests.integration.test_traffic_gap import windows

    jm = cluster.config.jobmanager
    prefix = f"tm{uuid.uuid4().hex[:8]}."
    names, major = start_topics(kafka_bootstrap, prefix)
    kills = 6
    chunks = [windows(2 * k, 2 * k + 1) for k in range(kills + 1)]
    code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm,
                         *job_flags(kafka_bootstrap, prefix, tmp_path))
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]

    def recovered(failures: int) -> bool:
        detail = rest(jm, f"/jobs/{job_id}")
        tasks = [v.get("status") for v in detail.get("vertices", [])]
        return (detail.get("state") == "RUNNING" and bool(tasks) and all(t == "RUNNING" for t in tasks)
                and len(job_exceptions(jm, job_id)) >= failures)

    orphans_ended = 0
    for k in range(kills):
        produce(kafka_bootstrap, names, chunks[k].impressions, chunks[k].clicks)
        time.sleep(3)  # some of the chunk is read (and maybe checkpointed) before the kill
        victims = cluster.taskmanager_pids()
        assert victims, "the cluster has a TaskManager to kill"
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        healed = cluster.heal()  # what `drnflow up --cluster` does on a running cluster
        assert healed.started == 1, healed
        orphans_ended += healed.orphans_ended
        wait_until(f"the job running again after kill {k + 1}", lambda n=k + 1: recovered(n), timeout_s=240)
    produce(kafka_bootstrap, names, [*chunks[kills].impressions, flush_impression()], chunks[kills].clicks)
    ref = reference_of(names, [c for ch in chunks for c in ch.impressions], [c for ch in chunks for c in ch.clicks],
                       major)

    def win_rates() -> list[dict[str, Any]]:
        return win_rates_of(kafka_bootstrap, names)

    wait_until("every window", lambda: w if len(w := win_rates()) >= len(ref.win_rates) else [], timeout_s=300,
               explain=lambda: job_story(jm, job_id, win_rates(), ref.win_rates))
    time.sleep(5)  # a duplicate would come after the last expected row
    assert sorted(win_rates(), key=row_key) == sorted(ref.win_rates, key=row_key)
    code, out, _ = cli(capsys, "jobs", "--jobmanager", jm)
    row = next(ln for ln in out.splitlines() if ln.startswith(job_id))
    assert row.split()[1] == "RUNNING" and int(row.split()[3]) >= kills, out
    code, _, err = cli(capsys, "cancel", job_id, "--jobmanager", jm)
    assert code == 0, err
    # In process mode each killed TaskManager's Python workers outlived it; healing ended them each time.
    assert orphans_ended >= 1, f"no orphaned Python worker was found after {kills} TaskManager kills"
    assert cluster.orphaned_workers() == []


@pytest.mark.slow
@pytest.mark.faults
def test_jobs_one_after_another_on_a_fresh_session_cluster_all_produce(
        kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory, tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 12, item 2: on a fresh cluster the first job is stopped with a savepoint before its Python has
    decoded anything, the second resumes from it and gets the traffic. In thread mode the second job ran
    the first job's modules, whose files were deleted, and crash-looped (FileNotFoundError in serde); a
    third, fresh job after it must work too."""
    from tests.integration.test_traffic_gap import windows

    fresh = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path_factory.mktemp("flink-fresh"),
                                            rest_port=process.free_port(), rpc_port=process.free_port()))
    fresh.start()
    try:
        jm = fresh.config.jobmanager
        outputs: list[int] = []
        for run in range(2):
            prefix = f"seq{run}{uuid.uuid4().hex[:6]}."
            names, _ = start_topics(kafka_bootstrap, prefix)
            flags = job_flags(kafka_bootstrap, prefix, tmp_path / str(run))
            code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, *flags)
            assert code == 0, err
            first = out.split("job id")[1].split()[0]
            if run == 0:  # stop before any traffic, resume, then feed the resumed job
                code, out, err = cli(capsys, "stop", first, "--jobmanager", jm, "--savepoint", str(tmp_path / "sp"))
                assert code == 0, err
                savepoint = next(ln.split()[1] for ln in out.splitlines() if ln.startswith("savepoint "))
                code, out, err = cli(capsys, "submit", "minor-update", "--jobmanager", jm, "--from-savepoint",
                                     savepoint, *flags)
                assert code == 0, err
            job = out.split("job id")[1].split()[0]
            stream = windows(0, 4)
            produce(kafka_bootstrap, names, [*stream.impressions, flush_impression()], stream.clicks)
            got = wait_until(f"the five windows of job {run + 1}", lambda n=names: w if len(w := [
                r for r in read_committed(kafka_bootstrap, n.win_rates)
                if serde.decode("WinRate", r.value)["model_id"] == "m1"]) >= 5 else [], timeout_s=180)
            outputs.append(len(got))
            code, out, _ = cli(capsys, "jobs", "--jobmanager", jm)
            row = next(ln for ln in out.splitlines() if ln.startswith(job))
            assert row.split()[1] == "RUNNING" and row.split()[3] == "0", f"job {job} failed meanwhile:\n{out}"
            code, _, err = cli(capsys, "cancel", job, "--jobmanager", jm)
            assert code == 0, err
        assert outputs == [5, 5], outputs
        assert len(fresh.taskmanager_pids()) == 1, "cancelling the jobs left the TaskManager alive"
    finally:
        fresh.stop()
