"""operators/sim_producer.py without a broker: librdkafka's delivery errors as kafka-python's KafkaErrors, and
`Candidates`, the policies' candidate sequence, reads as the list of pairs it replaced."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from kafka.errors import InvalidRecordError, InvalidTimestampError, KafkaError, RecordListTooLargeError

from models.candidates import Candidates, candidate_arrays
from operators.sim_producer import delivery_error


class FakeError:
    def __init__(self, code: int, name: str) -> None:
        self._code, self._name = code, name

    def code(self) -> int:
        return self._code

    def name(self) -> str:
        return self._name

    def str(self) -> str:
        return f"about {self._name}"


NOW = 1_765_000_000_000


def test_a_refused_future_timestamp_is_an_invalid_timestamp_error() -> None:
    e = delivery_error(FakeError(87, "INVALID_RECORD"), NOW + 2 * 3_600_000, NOW)
    assert isinstance(e, InvalidTimestampError) and "2.0 h ahead" in str(e)


@pytest.mark.parametrize(("code", "timestamp", "kind"), [
    (87, NOW, InvalidRecordError),  # refused for another reason: said as the broker said it
    (87, None, InvalidRecordError),
    (18, NOW, RecordListTooLargeError),
    (-192, NOW, KafkaError),  # a local error (message timed out): a KafkaError
    (-138, NOW, KafkaError),
])
def test_other_errors_keep_their_code(code: int, timestamp: int | None, kind: type) -> None:
    e = delivery_error(FakeError(code, "X"), timestamp, NOW)
    assert type(e) is kind and "X: about X" in str(e)


def test_candidates_read_as_the_list_of_pairs() -> None:
    ids = ["a", "b", "c"]
    actions = np.arange(6, dtype=np.float32).reshape(3, 2)
    c = Candidates(ids, actions)
    pairs: list[Any] = list(zip(ids, actions, strict=True))
    assert len(c) == 3 and [i for i, _ in c] == ids
    for got, want in ((list(c), pairs), (c[1:], pairs[1:]), (c[::-1], pairs[::-1]), ([c[-1]], [pairs[-1]])):
        assert [i for i, _ in got] == [i for i, _ in want]
        assert all(np.array_equal(f, g) for (_, f), (_, g) in zip(got, want, strict=True))
    got_ids, got_actions = candidate_arrays(c)
    assert got_ids == ids and got_actions.dtype == np.float32 and np.array_equal(got_actions, actions)
    assert got_actions is not actions and got_ids is not ids
    assert candidate_arrays(pairs)[0] == ids and np.array_equal(candidate_arrays(pairs)[1], actions)
    with pytest.raises(ValueError):
        Candidates(ids, actions[:2])
