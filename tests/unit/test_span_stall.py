"""Reading a range gives up only when it stalls, not when it is merely long: a busy broker that keeps
delivering is waited for; one that delivers nothing for `timeout_s` ends the read in one sentence."""

from __future__ import annotations

import time
from typing import Any

import pytest

from operators.kafka_io import PartitionSpan, read_span_records
from operators.kafka_io.clients import KafkaIOError
from operators.kafka_io.spans import ReadStalled


class SlowReader:
    """A consumer of one partition that hands out one record per poll after `delay_s`, up to `stall_at`."""

    def __init__(self, delay_s: float, stall_at: int | None = None) -> None:
        self.delay_s, self.stall_at, self.at = delay_s, stall_at, 0

    def assign(self, tps: Any) -> None: ...
    def resume(self, *tps: Any) -> None: ...
    def pause(self, *tps: Any) -> None: ...

    def seek(self, tp: Any, offset: int) -> None:
        self.tp, self.at = tp, offset

    def position(self, tp: Any) -> int:
        return self.at

    def poll(self, timeout_ms: int, max_records: int) -> dict[Any, list[Any]]:
        time.sleep(self.delay_s)
        if self.stall_at is not None and self.at >= self.stall_at:
            return {}
        record = type("Record", (), {"offset": self.at})()
        self.at += 1
        return {self.tp: [record]}


def test_a_long_read_that_keeps_moving_is_not_cut() -> None:
    span = PartitionSpan("t", 0, 0, 8)
    got = [r.offset for r in read_span_records(SlowReader(0.06), [span], timeout_s=0.2)]  # ~0.5 s in all
    assert got == list(range(8))


def test_a_stalled_read_ends_in_one_sentence() -> None:
    span = PartitionSpan("t", 0, 0, 8)
    t0 = time.monotonic()
    with pytest.raises(ReadStalled) as e:
        list(read_span_records(SlowReader(0.01, stall_at=3), [span], timeout_s=0.3))
    assert 0.3 <= time.monotonic() - t0 < 5
    assert isinstance(e.value, KafkaIOError) and isinstance(e.value, TimeoutError)
    assert "t[0]@3<8" in str(e.value) and "\n" not in str(e.value)
