"""The CLI as a user with exported variables runs it (issue 12): the broker and the prefix come only from
DRNFLOW_KAFKA_PORT and DRNFLOW_TOPIC_PREFIX, a decoy listener holds 127.0.0.1:9092, and every command's happy
path and bad-input path run against the session's real broker. The decoy must never see a connection."""

from __future__ import annotations

import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from drnflow.cli import main
from drnflow.stack.kafka import create_topics
from drnflow.tools.timespec import format_time_ms
from operators import kafka_io
from operators.model_weights_log import read_weights_log
from schemas import serde
from schemas.event_time import event_time_of
from schemas.topics import TopicNames
from tests.integration.minor_update_data import read_committed

pytestmark = pytest.mark.integration


class Decoy:
    """Accepts (and counts) every connection to 127.0.0.1:9092 while the tests run."""

    def __init__(self) -> None:
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.bind(("127.0.0.1", 9092))
        self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(timeout=5)
        self.sock.close()


@pytest.fixture(scope="module")
def decoy() -> Iterator[Decoy]:
    try:
        d = Decoy()
    except OSError:
        pytest.skip("127.0.0.1:9092 is taken by another program: the decoy cannot listen there")
    try:
        yield d
    finally:
        d.close()


@pytest.fixture
def env(kafka_bootstrap: str, decoy: Decoy, monkeypatch: pytest.MonkeyPatch) -> Iterator[TopicNames]:
    """DRNFLOW_KAFKA_PORT and DRNFLOW_TOPIC_PREFIX name the session broker and a fresh prefix; no flag will."""
    port = kafka_bootstrap.rsplit(":", 1)[1]
    assert port != "9092"
    names = TopicNames(f"env{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names)
    monkeypatch.delenv("DRNFLOW_BOOTSTRAP", raising=False)
    monkeypatch.setenv("DRNFLOW_KAFKA_PORT", port)
    monkeypatch.setenv("DRNFLOW_TOPIC_PREFIX", names.prefix)
    before = decoy.connections
    yield names
    assert decoy.connections == before, "a command connected to 127.0.0.1:9092"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_sentence(err: str) -> bool:
    return "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_simulate_topics_and_continue_use_the_environment(env: TopicNames, kafka_bootstrap: str,
                                                          capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "simulate", "--impressions", "60", "--no-progress", "--seed", "1")
    assert code == 0, err
    first = [event_time_of(r.value) for r in read_committed(kafka_bootstrap, env.impressions)]
    assert len(first) == 60 and min(t for t in first if t is not None) >= 1_704_067_200_000

    code, out, err = run(capsys, "topics", "--exact")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith(env.impressions + " "))
    assert line.split()[2] == "60"
    assert "2024-01-01" in line

    code, out, err = run(capsys, "simulate", "--impressions", "40", "--no-progress", "--seed", "1", "--continue")
    assert code == 0, err
    assert "continuing after the newest event time" in out
    times = [event_time_of(r.value) for r in read_committed(kafka_bootstrap, env.impressions)]
    assert len(times) == 100
    assert min(t for t in times[60:] if t is not None) > max(t for t in first if t is not None)
    ids = [serde.decode("Impression", r.value)["request_id"] for r in read_committed(kafka_bootstrap, env.impressions)]
    assert len(set(ids)) == 100, "a continued run must not reuse the request ids of the run before it"

    code, _, err = run(capsys, "simulate", "--impressions", "5", "--no-progress",
                       "--start-time", "2025-06-01T00:00:00Z", "--prefix", env.prefix)
    assert code == 0, err
    last = [event_time_of(r.value) for r in read_committed(kafka_bootstrap, env.impressions)][-5:]
    assert len(last) == 5 and all(t is not None and t >= 1_748_736_000_000 for t in last)

    # Event time far ahead of the broker's clock is refused by the broker: said, not swallowed.
    code, _, err = run(capsys, "simulate", "--impressions", "5", "--no-progress", "--start-time", "2100-01-01")
    assert code != 0 and "refuses record timestamps" in err and one_sentence(err), err


def test_topics_and_continue_find_the_newest_event_behind_an_older_run_written_last(
        env: TopicNames, kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    """A run of old event times written last must not hide the newer events before it: `--continue` used to
    look at the last 50 records per partition only and restarted in the past (every impression LATE), and
    `topics` (sampling the first and last records) crashed on a partition read twice."""
    code, _, err = run(capsys, "simulate", "--impressions", "150", "--no-progress", "--seed", "1")
    assert code == 0, err
    newest_impression = max(t for r in read_committed(kafka_bootstrap, env.impressions)
                            if (t := event_time_of(r.value)) is not None)
    newest = max(t for topic in (env.impressions, env.clicks) for r in read_committed(kafka_bootstrap, topic)
                 if (t := event_time_of(r.value)) is not None)
    code, _, err = run(capsys, "simulate", "--impressions", "120", "--no-progress", "--seed", "2",
                       "--start-time", "2023-06-01T00:00:00Z")
    assert code == 0, err

    code, out, err = run(capsys, "topics")
    assert code == 0, err
    line = next(ln for ln in out.splitlines() if ln.startswith(env.impressions + " "))
    assert "2023-06-01" in line and format_time_ms(newest_impression)[:16] in line, out

    code, out, err = run(capsys, "simulate", "--impressions", "10", "--no-progress", "--seed", "3", "--continue")
    assert code == 0, err
    assert f"continuing after the newest event time {format_time_ms(newest)}" in out, out

    writer = kafka_io.producer(kafka_bootstrap, "test-dead-letters")  # dead letters as a job writes them
    for reason in ("LATE", "LATE", "ITEM_NOT_SHOWN"):
        writer.send(env.dead_letters, value=serde.encode("DeadLetter", {
            "source_topic": env.clicks, "source_partition": 0, "source_offset": 1, "reason": reason}))
    writer.flush()
    writer.close()
    code, out, err = run(capsys, "topics", "--exact")
    assert code == 0, err
    assert f"{env.dead_letters} by reason: ITEM_NOT_SHOWN 1, LATE 2" in out, out
    times = [event_time_of(r.value) for r in read_committed(kafka_bootstrap, env.impressions)][-10:]
    assert all(t is not None and t > newest for t in times)


def test_model_init_list_and_rollback(env: TopicNames, kafka_bootstrap: str,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "model", "init", "drn", "--seed", "4", "--alpha", "0.05")
    assert code == 0, err
    assert "published MAJOR 'drn' v1" in out
    code, _, err = run(capsys, "model", "init", "drn")
    assert code != 0 and "already has 1 versions" in err and one_sentence(err)
    code, out, err = run(capsys, "model", "init", "drn", "--seed", "5", "--force")
    assert code == 0 and "v2" in out, err
    code, out, err = run(capsys, "model", "rollback", "drn", "--to", "1")
    assert code == 0 and "published ROLLBACK 'drn' v3 " in out, err
    code, _, err = run(capsys, "model", "rollback", "drn", "--to", "9")
    assert code != 0 and "has no v9" in err and one_sentence(err)
    code, out, err = run(capsys, "model", "list", "drn")
    assert code == 0, err
    kinds = [ln.split()[1:3] for ln in out.splitlines()[1:]]
    assert kinds == [["1", "MAJOR"], ["2", "MAJOR"], ["3", "ROLLBACK"]]
    lines = out.splitlines()
    assert lines[0].rstrip().endswith("notes") and "explore alpha 0.05" in lines[1]
    assert lines[3].endswith("v1's weights again")

    records = [serde.decode("ModelWeights", r.value) for r in read_committed(kafka_bootstrap, env.model_weights)]
    v1, v2, v3 = records
    assert v3["weights"] == v1["weights"] != v2["weights"] and v3["parent_version"] == 1
    assert '"alpha": 0.05' in v1["architecture"]
    log = read_weights_log(kafka_bootstrap, env.model_weights)
    assert log.latest["drn"]["version"] == 3 and log.max_version["drn"] == 3


def test_every_command_says_one_sentence_for_a_missing_prefix(env: TopicNames,
                                                              capsys: pytest.CaptureFixture[str],
                                                              tmp_path: Path) -> None:
    missing = f"missing{uuid.uuid4().hex[:6]}."
    cases = [
        ["simulate", "--impressions", "5", "--no-progress", "--prefix", missing],
        ["simulate", "--impressions", "5", "--no-progress", "--topic-prefix", missing],
        ["monitor", "--once", "--prefix", missing],
        ["model", "list", "--prefix", missing],
        ["model", "init", "m", "--prefix", missing],
        ["export", "impressions", "--prefix", missing, "-o", str(tmp_path / "x.avro")],
        ["major-update", "--prefix", missing, "--model-id", "drn", "--from", "0", "--to", "1000"],
    ]
    for argv in cases:
        code, _, err = run(capsys, *argv)
        assert code != 0, argv
        assert f"{missing}" in err and "does not exist" in err and one_sentence(err), (argv, err)


def test_monitor_once_and_export_import_with_the_environment(env: TopicNames, kafka_bootstrap: str, tmp_path: Path,
                                                             capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "simulate", "--impressions", "20", "--no-progress")
    assert code == 0, err
    code, out, err = run(capsys, "monitor", "--once")
    assert code == 0, err
    assert "no win-rates or model versions yet; newest impression event time 2024-01-01" in out
    path = tmp_path / "imps.avro"
    code, _, err = run(capsys, "export", "impressions", "-o", str(path))
    assert code == 0, err
    other = TopicNames(f"env{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, other)
    code, _, err = run(capsys, "import", str(path), "--prefix", other.prefix)
    assert code == 0, err
    assert len(read_committed(kafka_bootstrap, other.impressions)) == 20
    code, _, err = run(capsys, "import", str(path), "--prefix", other.prefix)
    assert code != 0 and "already holds records" in err and one_sentence(err), err
    assert len(read_committed(kafka_bootstrap, other.impressions)) == 20, "a refused import wrote nothing"
    code, _, err = run(capsys, "import", str(path), "--prefix", other.prefix, "--append")
    assert code == 0, err
    assert len(read_committed(kafka_bootstrap, other.impressions)) == 40
    code, _, err = run(capsys, "simulate", "--impressions", "10", "--no-progress", "--drift", "news", "--policy",
                       "oracle", "--prefix", other.prefix, "--start-time", "2024-02-01")
    assert code == 0, err
    assert len(read_committed(kafka_bootstrap, other.impressions)) == 50
    assert kafka_io.list_topics(kafka_bootstrap)[other.impressions] >= 1


def test_replay_and_major_update_with_the_environment(env: TopicNames, kafka_bootstrap: str,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "model", "init", "drn", "--seed", "1")
    assert code == 0, err
    code, _, err = run(capsys, "simulate", "--impressions", "300", "--no-progress", "--policy", "popular")
    assert code == 0, err
    target = f"rp{uuid.uuid4().hex[:8]}."
    code, out, err = run(capsys, "replay", "--to-prefix", target, "--no-progress")
    assert code == 0, err
    assert "replayed 300 impressions" in out
    assert len(read_committed(kafka_bootstrap, target + "impressions")) == 300
    code, out, err = run(capsys, "major-update", "--from", "2024-01-01", "--to", "2024-01-02", "--model-id", "drn",
                         "--steps", "20", "--no-baselines", "--no-progress")
    assert code in (0, 3), err  # 3: the gate kept the candidate unpublished, which is a result too
    assert "major-update drn: " in out and "kafka.conn" not in out + err


@pytest.fixture(scope="module")
def env_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from drnflow.stack import process
    from drnflow.stack.flink import FlinkCluster, FlinkClusterConfig

    c = FlinkCluster(FlinkClusterConfig(state_dir=tmp_path_factory.mktemp("flink-env"),
                                        rest_port=process.free_port(), rpc_port=process.free_port()))
    c.start()
    try:
        yield str(c.config.rest_port)
    finally:
        c.stop()


@pytest.mark.slow
def test_submit_jobs_and_cancel_with_the_environment(env: TopicNames, env_cluster: str,
                                                     monkeypatch: pytest.MonkeyPatch,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    """No --jobmanager, --bootstrap or --prefix: the cluster, the broker and the topics come from the
    environment, and the submitted job reads the topics the environment names."""
    monkeypatch.delenv("DRNFLOW_JOBMANAGER", raising=False)
    monkeypatch.setenv("DRNFLOW_FLINK_REST_PORT", env_cluster)
    code, _, err = run(capsys, "model", "init", "drn", "--seed", "2")
    assert code == 0, err
    code, out, err = run(capsys, "submit", "minor-update", "--window", "2 min", "--attribution-window", "2 min")
    assert code == 0, err
    job_id = out.split("job id")[1].split()[0]
    code, out, err = run(capsys, "jobs")
    assert code == 0 and job_id in out and "RUNNING" in out, err
    code, _, err = run(capsys, "cancel", job_id)
    assert code == 0, err
