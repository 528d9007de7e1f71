"""`drnflow replay` on the real broker: records land under the new prefix with their original keys, value
bytes and event times (as record timestamps), in their original order per partition; ranges and pacing;
the base model-weights are seeded; bad input gets one sentence."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from drnflow.cli import main
from drnflow.stack import process
from drnflow.stack.kafka import create_topics
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import T0, hand_written_stream, produce_stream, publish, read_committed

pytestmark = pytest.mark.integration


def logged_run(bootstrap: str) -> tuple[TopicNames, object]:
    names = TopicNames(f"log{uuid.uuid4().hex[:8]}.")
    create_topics(bootstrap, names)
    stream = hand_written_stream(n_windows=3)
    produce_stream(bootstrap, names, stream)  # record timestamps: produce time, not event time
    return names, stream


@pytest.mark.parametrize("client", ["confluent", "kafka-python"])
def test_replay_copies_records_with_event_times_in_order(kafka_bootstrap: str, client: str,
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    src, stream = logged_run(kafka_bootstrap)
    dst = TopicNames(f"rp{uuid.uuid4().hex[:8]}.")
    assert main(["replay", "--bootstrap", kafka_bootstrap, "--from-prefix", src.prefix, "--to-prefix", dst.prefix,
                 "--client", client, "--no-progress"]) == 0
    out = capsys.readouterr().out
    for logical in ("impressions", "clicks"):
        before = read_committed(kafka_bootstrap, src.name(logical))
        after = read_committed(kafka_bootstrap, dst.name(logical))
        assert [(r.key, r.value) for r in after] == [(r.key, r.value) for r in before]
        schema = "Impression" if logical == "impressions" else "Click"
        for r in after:
            try:
                t = serde.decode(schema, r.value)["event_time"]
            except serde.SerdeError:
                continue  # garbage keeps its original timestamp
            assert r.timestamp == t
    n_imp = len(stream.impressions) + 1  # type: ignore[attr-defined]
    assert f"replayed {n_imp} impressions" in out


def test_time_range_pacing_and_weights_seed(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    src, stream = logged_run(kafka_bootstrap)
    base = {"model_id": "m1", "version": 1, "parent_version": None, "kind": "MAJOR", "created_at": T0,
            "window_start": None, "window_end": None, "explore_seeds": [], "weights": b"\0" * 8,
            "layout": [{"name": "w", "shape": [2]}], "checksum": "c", "architecture": "{}"}
    minor_early = {**base, "version": 2, "parent_version": 1, "kind": "MINOR", "window_start": T0 - 20_000,
                   "window_end": T0 - 10_000}
    minor_in_range = {**base, "version": 3, "parent_version": 2, "kind": "MINOR", "window_start": T0 + 10_000,
                      "window_end": T0 + 20_000}
    later_major = {**base, "version": 4}
    publish(kafka_bootstrap, src.model_weights, [(b"m1", serde.encode("ModelWeights", w))
                                                 for w in (base, minor_early, minor_in_range, later_major)])
    dst = TopicNames(f"rp{uuid.uuid4().hex[:8]}.")
    lo, hi = T0 + 10_000, T0 + 12_000  # 2 s of event time at x4: at least 0.5 s of wall time
    t0 = time.monotonic()
    assert main(["replay", "--bootstrap", kafka_bootstrap, "--from-prefix", src.prefix, "--to-prefix", dst.prefix,
                 "--from-time", str(lo), "--to-time", str(hi), "--speed", "4", "--no-progress"]) == 0
    took = time.monotonic() - t0
    imps = [serde.decode("Impression", r.value) for r in read_committed(kafka_bootstrap, dst.impressions)]
    want = [r for r in stream.impressions if lo <= r["event_time"] < hi]  # type: ignore[attr-defined]
    assert [(r["request_id"], r["event_time"]) for r in imps] == [(r["request_id"], r["event_time"]) for r in want]
    assert len(want) >= 3
    span = (max(r["event_time"] for r in want) - min(r["event_time"] for r in want)) / 1000
    assert took >= span / 4 * 0.9
    seeded = [serde.decode("ModelWeights", r.value)["version"]
              for r in read_committed(kafka_bootstrap, dst.model_weights)]
    assert seeded == [1, 2], "what a run starting at --from-time saw: not v3 (its output) nor what came after"
    assert "2 model-weights records seeded" in capsys.readouterr().out


def test_bad_input_gets_one_sentence(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str],
                                     tmp_path: Path) -> None:
    src, _ = logged_run(kafka_bootstrap)
    used = TopicNames(f"rp{uuid.uuid4().hex[:8]}.")
    assert main(["replay", "--bootstrap", kafka_bootstrap, "--from-prefix", src.prefix, "--to-prefix", used.prefix,
                 "--no-progress"]) == 0
    capsys.readouterr()
    dead = f"127.0.0.1:{process.free_port()}"
    base = ["replay", "--bootstrap", kafka_bootstrap, "--no-progress"]
    empty_to = f"e{uuid.uuid4().hex[:6]}."
    cases = [
        ([*base, "--from-prefix", "nope.", "--to-prefix", "new."], "topic 'nope.impressions' does not exist"),
        (["replay", "--bootstrap", dead, "--from-prefix", src.prefix, "--to-prefix", "n."], "cannot reach"),
        ([*base, "--from-prefix", src.prefix, "--to-prefix", src.prefix], "must differ"),
        ([*base, "--from-prefix", src.prefix, "--to-prefix", used.prefix], "already holds records"),
        ([*base, "--from-prefix", src.prefix, "--to-prefix", "z.", "--from-time", "9", "--to-time", "3"], "is empty"),
        ([*base, "--from-prefix", src.prefix, "--to-prefix", "z.", "--speed", "0"], "--speed must be > 0"),
        ([*base, "--from-prefix", src.prefix, "--to-prefix", "bad prefix"], "characters Kafka rejects"),
        ([*base, "--from-prefix", src.prefix, "--to-prefix", empty_to, "--from-time", "1",
          "--to-time", "2"], "the range holds no impressions or clicks"),
    ]
    for argv, sentence in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code != 0, argv
        assert sentence in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)
    from operators.kafka_io import list_topics

    assert not [t for t in list_topics(kafka_bootstrap) if t.startswith(empty_to)], "an empty replay created topics"
