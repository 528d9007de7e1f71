"""The load generator's pieces without a broker: request id and event time rewritten in the Avro bytes
(checked by decoding them), laps, the future-timestamp limit, the rate pacer."""

from __future__ import annotations

from typing import Any

import pytest

from drnflow.tools.loadgen import (
    LAP_ALIGN_MS,
    RatePacer,
    Traffic,
    first_lap_after,
    lap_records,
    laps_before_the_future,
)
from schemas import serde
from schemas.event_time import encode_long, event_time_of, join_event_prefix, split_event_prefix
from tests.integration.minor_update_data import click, impression

T = 1_700_000_000_000


def test_encode_long_is_avros_zigzag_varint() -> None:
    for n in (0, -1, 1, 63, -64, 64, 300, -(1 << 63), (1 << 63) - 1, T):
        value = serde.encode("Click", {"request_id": "", "item_id": "", "event_time": n, "user_id": None})
        assert value[2:-1] == encode_long(n)
    with pytest.raises(OverflowError):
        encode_long(1 << 63)


@pytest.mark.parametrize("request_id", ["r1", "", "é" * 70, "x" * 70_000])
def test_a_value_rewritten_in_its_bytes_decodes_to_the_record_with_the_new_id_and_time(request_id: str) -> None:
    records: list[tuple[str, dict[str, Any]]] = [
        ("Impression", impression(request_id, T + 5, "m1", 3, 101, "ECCE")),
        ("Click", {**click(request_id, f"{request_id}/i1", T + 7), "user_id": "u9"}),
    ]
    for schema, rec in records:
        value = serde.encode(schema, rec)
        split = split_event_prefix(value)
        assert split is not None
        rid, second, t, tail = split
        assert rid == request_id.encode() and t == rec["event_time"]
        assert join_event_prefix(rid, second, t, tail) == value
        moved = join_event_prefix(rid + b"~2", second, t + 120_000, tail)
        assert serde.decode(schema, moved) == {**serde.decode(schema, value), "request_id": request_id + "~2",
                                               "event_time": rec["event_time"] + 120_000}
        assert event_time_of(moved) == t + 120_000


@pytest.mark.parametrize("value", [b"", None, b"\x00\xffnot avro", b"\x02a", b"\x01", b"\x06ab", b"\x02a\x02b"])
def test_bytes_without_the_prefix_are_not_split(value: bytes | None) -> None:
    assert split_event_prefix(value) is None


def traffic() -> Traffic:
    values = [("impression", serde.encode("Impression", impression("a", T, "m1", 1, 7, "EC"))),
              ("click", serde.encode("Click", click("a", "a/i0", T + 1_000))),
              ("click", b"\x00\xffnot avro"),
              ("impression", serde.encode("Impression", impression("b", T + 59_999, "m1", 1, 7, "CE")))]
    keys = [b"a", b"other-key", b"garbage", b"b"]
    times = [T, T + 1_000, 1_800_000_000_000, T + 59_999]  # the garbage's: when it was produced
    records = [(kind, key, value, t, split_event_prefix(value))
               for (kind, value), key, t in zip(values, keys, times, strict=True)]
    return Traffic(records, T, T + 59_999)


def test_lap_zero_is_the_log_and_a_later_lap_is_new_requests_later() -> None:
    tr = traffic()
    assert tr.lap_shift_ms == LAP_ALIGN_MS  # a span of 59,999 ms: one minute
    assert list(lap_records(tr, 0)) == [(k, key, v, t) for k, key, v, t, _ in tr.records]
    lap2 = list(lap_records(tr, 2))
    shift = 2 * LAP_ALIGN_MS
    assert [(k, key, t) for k, key, _, t in lap2] == [
        ("impression", b"a~2", T + shift), ("click", b"other-key", T + 1_000 + shift),
        ("click", b"garbage", T + 1_000 + shift), ("impression", b"b~2", T + 59_999 + shift)]
    imp = serde.decode("Impression", lap2[0][2])
    assert (imp["request_id"], imp["event_time"]) == ("a~2", T + shift)
    assert imp["slots"] == serde.decode("Impression", tr.records[0][2])["slots"]
    assert serde.decode("Click", lap2[1][2])["request_id"] == "a~2"  # matches its impression; its key is kept
    assert lap2[2][2] == b"\x00\xffnot avro"  # written as it was, at the time of the record before it


def test_lap_shift_is_past_the_span_on_a_whole_minute() -> None:
    for span, shift in ((0, 60_000), (59_999, 60_000), (60_000, 120_000), (3_600_001, 3_660_000)):
        assert Traffic([], T, T + span).lap_shift_ms == shift


def test_laps_stop_an_hour_ahead_of_the_clock() -> None:
    tr = Traffic([], T, T + 59_999)  # one-minute laps
    assert laps_before_the_future(tr, now_ms=T + 59_999) == 61  # laps 0..60 end at most 60 min ahead
    assert laps_before_the_future(tr, now_ms=T - 3_600_000 + 59_999) == 1
    assert laps_before_the_future(tr, now_ms=T - 3_600_000) == 0


def test_the_pacer_holds_the_rate_and_notes_how_far_it_fell_behind() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    pacer = RatePacer(1000.0, clock=lambda: now[0], sleep=sleep)
    pacer.wait(0)
    pacer.wait(500)  # 0.5 s ahead of the schedule: waits it out
    assert slept == [pytest.approx(0.5)]
    now[0] += 2.0  # then the writer stalls for 2 s
    pacer.wait(1000)  # due at 101.0, it is 102.5
    assert slept == [pytest.approx(0.5)] and pacer.behind_s == pytest.approx(1.5)
    unpaced = RatePacer(None, clock=lambda: now[0], sleep=sleep)
    unpaced.wait(10**9)
    assert len(slept) == 1


def test_the_pacer_looks_at_the_clock_every_ten_ms_of_its_schedule() -> None:
    assert [RatePacer(r).every for r in (50.0, 400.0, 10_000.0, 1e6)] == [1, 4, 100, 256]
    assert RatePacer(None).every == 256


def test_a_continued_run_starts_with_the_first_lap_after_the_newest_event() -> None:
    tr = Traffic([], T, T + 59_999)  # laps start at T, T + 1 min, ...
    assert [first_lap_after(tr, t) for t in (None, T - 5, T, T + 59_999, T + 60_000, T + 10 * 60_000 + 1)] == [
        0, 0, 1, 1, 2, 11]
