"""Builders of the records drnflow writes, one per record type, so every writer fills the same fields.

Plain Python on purpose (lists, not arrays): the bottom layer knows the schema, not numpy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

#: One shown slot, in display order: (item_id, team CURRENT|EXPLORE, action features, explore seed of
#: the list it came from or None for the current list).
ShownSlot = tuple[str, str, list[float], int | None]


def impression_record(
    *,
    request_id: str,
    user_id: str,
    event_time: int,
    model_id: str,
    model_version: int,
    explore_seeds: Sequence[int],
    slots: Iterable[ShownSlot],
    state_features: list[float],
    interleaving: str,
    generator: str | None = None,
    pdgd: Mapping[str, float] | None = None,
) -> dict[str, Any]:
    """An Impression (schemas/impression.avsc). `explore_seed` is the first of `explore_seeds` (0 for a
    policy that does not explore); positions are the slots' order; `pdgd` = {temperature, log_rest} of a
    Plackett–Luce sampled list."""
    return {
        "request_id": request_id,
        "user_id": user_id,
        "event_time": int(event_time),
        "model_id": model_id,
        "model_version": int(model_version),
        "explore_seed": int(explore_seeds[0]) if explore_seeds else 0,
        "slots": [
            {"item_id": item_id, "position": pos, "team": team, "features": features, "explore_seed": seed}
            for pos, (item_id, team, features, seed) in enumerate(slots)
        ],
        "state_features": state_features,
        "explore_seeds": list(explore_seeds),
        "interleaving": interleaving,
        "generator": generator,
        "pdgd": None if pdgd is None else {"temperature": float(pdgd["temperature"]),
                                           "log_rest": float(pdgd["log_rest"])},
    }


def pdgd_batch_record(samples: Iterable[tuple[int, int, bytes, Sequence[int]]]) -> dict[str, Any]:
    """A PdgdBatch (schemas/pdgd_batch.avsc) of (partition, offset, impression bytes, clicked positions)."""
    return {"samples": [{"partition": int(p), "offset": int(o), "impression": bytes(raw),
                         "clicked": sorted(int(c) for c in clicked)} for p, o, raw, clicked in samples]}


#: Event times are epoch milliseconds within 130 years of 1970, [1840-01-01, 2100-01-01) (design.md §3): far
#: from the long's ends (window arithmetic never overflows) and far below a microsecond stamp of today
#: (~1.7e15). The JVM decoder uses the same bounds (operators/jvm/.../AvroEventDeserializer.java).
MAX_EVENT_TIME_MS = 4_102_444_800_000
MIN_EVENT_TIME_MS = -MAX_EVENT_TIME_MS


def record_problem(schema: str, record: dict[str, Any]) -> str | None:
    """Why a decoded Impression or Click cannot be used (it goes to dead-letters as MALFORMED), or None.
    One such record used to crash the job or push the watermark decades ahead (issue 11)."""
    t = int(record["event_time"])
    if not MIN_EVENT_TIME_MS <= t < MAX_EVENT_TIME_MS:
        return (f"event_time {t} is outside [{MIN_EVENT_TIME_MS}, {MAX_EVENT_TIME_MS}) ms (1840..2100); "
                "is it in epoch milliseconds?")
    if schema == "Impression" and int(record["explore_seed"]) < 0:
        return f"explore_seed {record['explore_seed']} is negative; explore seeds are non-negative"
    if schema == "Impression":
        for seed in record.get("explore_seeds") or []:
            if int(seed) < 0:
                return f"explore_seeds holds {seed}; explore seeds are non-negative"
    return None


def skew_problem(event_time: int, kafka_timestamp: int, max_skew_ms: int) -> str | None:
    """Why an event time is too far ahead to be believed (an OUT_OF_RANGE dead letter), or None: more than
    `max_skew_ms` after the record's Kafka timestamp, which is stored with the record, so every replay
    decides the same. The JVM deserializer applies the same rule with the same sentence."""
    if max_skew_ms <= 0 or kafka_timestamp < 0 or event_time - kafka_timestamp <= max_skew_ms:
        return None
    return (f"event_time {event_time} is {event_time - kafka_timestamp} ms ahead of the record's Kafka "
            f"timestamp {kafka_timestamp}; the job's max event-time skew is {max_skew_ms} ms")
