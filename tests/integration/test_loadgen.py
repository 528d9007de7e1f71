"""`drnflow loadgen` on the real broker, and the minor-update job over what it wrote: a second lap is the
first one's traffic again as new requests a lap span later, so the job counts every window of it exactly as
it counts the first lap's, dead letters included; a stopped run loses nothing it said it wrote; bad input
gets one sentence."""

from __future__ import annotations

import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from drnflow.cli import main
from drnflow.stack.kafka import create_topics
from drnflow.tools.replay import run_minor_update_bounded
from jobs.minor_update_config import MinorUpdateConfig
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import (
    JOB_FLAGS,
    T0,
    hand_written_stream,
    impression,
    initial_major,
    produce_stream,
    publish,
    read_committed,
)

pytestmark = pytest.mark.integration

SHIFT = 60_000  # the hand-written stream spans under a minute of event time


def logged(bootstrap: str) -> TopicNames:
    names = TopicNames(f"lg{uuid.uuid4().hex[:8]}.")
    create_topics(bootstrap, names)
    major = initial_major(MinorUpdateConfig(seed=11), "m1", 1, T0 - 1)
    publish(bootstrap, names.model_weights, [(b"m1", serde.encode("ModelWeights", major))])
    produce_stream(bootstrap, names, hand_written_stream(n_windows=3))
    return names


def events(bootstrap: str, topic: str, schema: str) -> list[dict[str, Any]]:
    """The decodable records of a topic (the hand-written stream has garbage too)."""
    out = []
    for r in read_committed(bootstrap, topic):
        try:
            out.append(serde.decode(schema, r.value))
        except serde.SerdeError:
            continue
    return out


def test_two_laps_count_the_same_windows_twice(kafka_bootstrap: str, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    src = logged(kafka_bootstrap)
    dst = TopicNames(f"ld{uuid.uuid4().hex[:8]}.")
    t0 = time.monotonic()
    assert main(["loadgen", "--bootstrap", kafka_bootstrap, "--prefix", src.prefix, "--to-prefix", dst.prefix,
                 "--laps", "2", "--rate", "400", "--no-progress"]) == 0
    took = time.monotonic() - t0
    out = capsys.readouterr().out
    src_imp = read_committed(kafka_bootstrap, src.impressions)
    src_clicks = read_committed(kafka_bootstrap, src.clicks)
    n = len(src_imp) + len(src_clicks)
    assert f"wrote {2 * len(src_imp):,} impressions and {2 * len(src_clicks):,} clicks" in out
    assert f"to {dst.impressions}/{dst.clicks}" in out and ": laps 0-1, " in out
    assert "1 model-weights records seeded" in out
    assert "6 records without a request_id/event_time written as they were" in out  # 3 garbage values a lap
    assert took >= (2 * n - 4) / 400  # paced to 400 events/s, looking at the clock every 4 records

    # Lap 1 is lap 0 with new request ids a lap later; the rest of each value is the logged bytes.
    for logical, schema in (("impressions", "Impression"), ("clicks", "Click")):
        written = read_committed(kafka_bootstrap, dst.name(logical))
        good = []
        for r in written:
            try:
                good.append((serde.decode(schema, r.value), r))
            except serde.SerdeError:
                continue
        lap0 = [(d, r) for d, r in good if "~" not in d["request_id"]]
        lap1 = [(d, r) for d, r in good if d["request_id"].endswith("~1")]
        assert len(lap0) == len(lap1) == len(good) // 2 > 0
        assert sorted((d["request_id"] + "~1", d["event_time"] + SHIFT) for d, _ in lap0) == sorted(
            (d["request_id"], d["event_time"]) for d, _ in lap1)
        for d, r in lap1:
            assert r.timestamp == d["event_time"]
            if r.key != b"garbage":
                assert r.key == d["request_id"].encode()

    run_minor_update_bounded(kafka_bootstrap, dst.prefix, [*JOB_FLAGS, "--checkpoint-dir", str(tmp_path / "ck")])
    rows = [serde.decode("WinRate", r.value) for r in read_committed(kafka_bootstrap, dst.win_rates)]
    counted = ("impressions", "explore_wins", "current_wins", "ties", "no_clicks")

    def by_window(lap: int) -> dict[tuple[object, ...], tuple[int, ...]]:
        lo, hi = T0 + lap * SHIFT, T0 + (lap + 1) * SHIFT
        return {(w["model_id"], w["window_start"] - lap * SHIFT, w["model_version"], w["explore_seed"]):
                tuple(w[c] for c in counted) for w in rows if lo <= w["window_start"] < hi}

    first, second = by_window(0), by_window(1)
    assert len(first) >= 6 and sum(c[0] for c in first.values()) > 50
    assert second == first
    dead = [serde.decode("DeadLetter", r.value) for r in read_committed(kafka_bootstrap, dst.dead_letters)]
    reasons = Counter(d["reason"] for d in dead)
    assert reasons["MALFORMED"] == 6 and all(v % 2 == 0 for v in reasons.values()), reasons


def test_a_stopped_run_loses_nothing_it_wrote(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = logged(kafka_bootstrap)
    dst = TopicNames(f"ls{uuid.uuid4().hex[:8]}.")
    assert main(["loadgen", "--bootstrap", kafka_bootstrap, "--prefix", src.prefix, "--to-prefix", dst.prefix,
                 "--laps", "0", "--duration", "1.5", "--rate", "150", "--no-progress", "--no-weights"]) == 0
    out = capsys.readouterr().out
    assert "stopped: --duration ran out" in out and "0 model-weights records seeded" in out
    imps, clicks = (len(read_committed(kafka_bootstrap, t)) for t in (dst.impressions, dst.clicks))
    assert f"wrote {imps:,} impressions and {clicks:,} clicks" in out
    assert 200 <= imps + clicks <= 240  # 1.5 s at 150 events/s

    # After a pause the soak goes on into the same topics: the next lap, all of it new requests, later events.
    written = events(kafka_bootstrap, dst.impressions, "Impression")
    before = {d["request_id"] for d in written}
    newest = max(d["event_time"] for name, schema in ((dst.impressions, "Impression"), (dst.clicks, "Click"))
                 for d in events(kafka_bootstrap, name, schema))
    assert main(["loadgen", "--bootstrap", kafka_bootstrap, "--prefix", src.prefix, "--to-prefix", dst.prefix,
                 "--continue", "--laps", "1", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "0 model-weights records seeded" in out
    after = events(kafka_bootstrap, dst.impressions, "Impression")
    added = [d for d in after if d["request_id"] not in before]
    assert len(added) == len(after) - len(written) == len(events(kafka_bootstrap, src.impressions, "Impression"))
    lap = {d["request_id"].rsplit("~", 1)[1] for d in added}
    assert len(lap) == 1 and f": lap {next(iter(lap))}, " in out  # the lap after the one that was stopped
    assert all(d["event_time"] > newest for d in added)


def test_bad_input_gets_one_sentence(kafka_bootstrap: str, capsys: pytest.CaptureFixture[str]) -> None:
    src = logged(kafka_bootstrap)
    used = TopicNames(f"lu{uuid.uuid4().hex[:8]}.")
    assert main(["loadgen", "--bootstrap", kafka_bootstrap, "--prefix", src.prefix, "--to-prefix", used.prefix,
                 "--no-progress"]) == 0
    recent = TopicNames(f"lr{uuid.uuid4().hex[:8]}.")  # event times of ten minutes ago: 71 one-minute laps fit
    create_topics(kafka_bootstrap, recent)
    now = int(time.time() * 1000)
    publish(kafka_bootstrap, recent.impressions, [(b"r1", serde.encode("Impression", impression(
        "r1", now - 600_000, "m1", 1, 7, "EC")))])
    capsys.readouterr()
    base = ["loadgen", "--bootstrap", kafka_bootstrap, "--no-progress"]
    cases = [
        ([*base, "--prefix", "nope.", "--to-prefix", "n."], "topic 'nope.impressions' does not exist"),
        ([*base, "--prefix", src.prefix, "--to-prefix", src.prefix], "must differ"),
        ([*base, "--prefix", src.prefix, "--to-prefix", used.prefix], "already holds records; write the load into a "
                                                                        "new --to-prefix, or go on after its newest "
                                                                        "event with --continue"),
        ([*base, "--prefix", src.prefix, "--to-prefix", "z.", "--rate", "0"], "--rate must be > 0"),
        ([*base, "--prefix", src.prefix, "--to-prefix", "z.", "--laps", "-1"], "--laps must be >= 1"),
        ([*base, "--prefix", src.prefix, "--to-prefix", "z.", "--duration", "0"], "--duration must be > 0"),
        ([*base, "--prefix", src.prefix, "--to-prefix", "z.", "--from-time", "1", "--to-time", "2"],
         "the range holds no impressions or clicks"),
        ([*base, "--prefix", recent.prefix, "--to-prefix", f"lf{uuid.uuid4().hex[:6]}.", "--laps", "100"],
         "71 lap(s) fit"),
    ]
    for argv, sentence in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code != 0, argv
        assert sentence in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)
