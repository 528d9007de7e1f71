"""A logged minor-update run, replayed: `drnflow replay --run-minor-update` reruns the job bounded over the
replayed topics and reproduces the original MINOR weight versions byte for byte; `drnflow monitor --once
--json` shows the rows the run produced."""

from __future__ import annotations

import json
import uuid

import pytest

from drnflow.cli import main
from drnflow.stack.kafka import create_topics
from drnflow.tools.replay import base_weights, run_minor_update_bounded
from jobs.minor_update_config import MinorUpdateConfig
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import (
    JOB_FLAGS,
    T0,
    WINDOW_MS,
    hand_written_stream,
    initial_major,
    produce_stream,
    publish,
    read_committed,
)

pytestmark = pytest.mark.integration



@pytest.fixture(scope="module")
def logged(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> TopicNames:
    """The original run: a MAJOR for m1, the hand-written stream, one bounded minor-update run."""
    names = TopicNames(f"orig{uuid.uuid4().hex[:8]}.")
    create_topics(kafka_bootstrap, names)
    major = initial_major(MinorUpdateConfig(seed=11), "m1", 1, T0 - 1)
    publish(kafka_bootstrap, names.model_weights, [(b"m1", serde.encode("ModelWeights", major))])
    produce_stream(kafka_bootstrap, names, hand_written_stream())
    ckpt = tmp_path_factory.mktemp("orig-ckpt")
    run_minor_update_bounded(kafka_bootstrap, names.prefix, [*JOB_FLAGS, "--checkpoint-dir", str(ckpt)])
    return names


def test_replay_seeds_only_the_versions_the_run_started_from() -> None:
    """The first replayed record is rarely window-aligned: a MINOR of the window holding it was made by the run
    (copying it shifted every later version number of the rerun, and with it the staleness decisions)."""
    import numpy as np

    from models.weights import ParamSpec, make_model_weights_record
    from operators.kafka_io import KafkaRecord

    flat = np.ones(2, dtype=np.float32)

    def rec(version: int, kind: str, window: int | None) -> KafkaRecord:
        ws = None if window is None else T0 + window * WINDOW_MS
        w = make_model_weights_record("m1", version, version - 1 if version else None, kind, flat,
                                      [ParamSpec("w", (2,))], 0, [], window_start=ws,
                                      window_end=None if ws is None else ws + WINDOW_MS)
        return KafkaRecord("mw", 0, version, 0, b"m1", serde.encode("ModelWeights", w))

    log = [rec(0, "MAJOR", None), rec(1, "MINOR", -1), rec(2, "MINOR", 0), rec(3, "MINOR", 1)]
    assert [r.offset for r in base_weights(log, T0 + 137)] == [0, 1]
    assert [r.offset for r in base_weights(log, T0)] == [0, 1]
    assert [r.offset for r in base_weights(log, None)] == [0]


def test_replay_reproduces_the_weight_versions_byte_for_byte(
        logged: TopicNames, kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory,
        capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    dst = TopicNames(f"again{uuid.uuid4().hex[:8]}.")
    ckpt = tmp_path_factory.mktemp("replay-ckpt")
    code = main(["replay", "--bootstrap", kafka_bootstrap, "--from-prefix", logged.prefix, "--to-prefix", dst.prefix,
                 "--no-progress", "--run-minor-update", "--", *JOB_FLAGS, "--checkpoint-dir", str(ckpt)])
    out, err = capsys.readouterr()
    assert code == 0, err
    original = [r.value for r in read_committed(kafka_bootstrap, logged.model_weights)
                if serde.decode("ModelWeights", r.value)["kind"] == "MINOR"]
    replayed = [r.value for r in read_committed(kafka_bootstrap, dst.model_weights)
                if serde.decode("ModelWeights", r.value)["kind"] == "MINOR"]
    assert len(original) >= 2
    assert sorted(replayed) == sorted(original)
    assert f"weights: {len(original)} MINOR versions reproduced byte for byte" in out


def test_monitor_once_json_shows_the_rows_of_the_run(logged: TopicNames, kafka_bootstrap: str,
                                                     capsys: pytest.CaptureFixture[str]) -> None:
    capsys.readouterr()
    assert main(["monitor", "--bootstrap", kafka_bootstrap, "--prefix", logged.prefix, "--once", "--json",
                 "--windows", "100"]) == 0
    doc = json.loads(capsys.readouterr().out)
    rates = [serde.decode("WinRate", r.value) for r in read_committed(kafka_bootstrap, logged.win_rates)]
    weights = [serde.decode("ModelWeights", r.value) for r in read_committed(kafka_bootstrap, logged.model_weights)]
    shown = {(m["model_id"], w["window_start"], w["model_version"], w["explore_seed"]): w
             for m in doc["models"] for w in m["windows"]}
    assert len(shown) == len(rates) > 0
    for r in rates:
        w = shown[(r["model_id"], r["window_start"], r["model_version"], r["explore_seed"])]
        assert (w["explore_wins"], w["current_wins"], w["decision"]) == (r["explore_wins"], r["current_wins"],
                                                                          r["decision"])
    m1 = next(m for m in doc["models"] if m["model_id"] == "m1")
    newest = max((w for w in weights if w["model_id"] == "m1"), key=lambda w: w["version"])
    assert m1["lineage"][0]["version"] == newest["version"] and m1["lineage"][-1]["kind"] == "MAJOR"
    assert doc["newest_event_time"] is not None and m1["lag_ms"] is not None


def test_monitor_bad_input(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    for argv, sentence in [
        (["monitor", "--bootstrap", kafka_bootstrap, "--prefix", "nope.", "--once"], "does not exist"),
        (["monitor", "--bootstrap", "127.0.0.1:1", "--once"], "cannot reach the Kafka broker"),
        (["monitor", "--bootstrap", kafka_bootstrap, "--once", "--plot", "x.jpg"], "must end in .png or .html"),
    ]:
        code = main(argv)
        err = capsys.readouterr().err
        assert code != 0 and sentence in err and len(err.strip().splitlines()) == 1, (argv, err)
