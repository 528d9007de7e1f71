"""A hand-written impressions/clicks stream for the minor-update job tests, with every §4 rule hit,
plus helpers to produce it to Kafka and read the job's committed outputs back."""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from schemas import serde
from schemas.topics import TopicNames

T0 = 1_700_000_000_000  # a multiple of every window size used here
WINDOW_MS = 10_000
ATTRIBUTION_MS = 5_000
OOO_MS = 1_000
#: The minor-update job's flags for these windows, as a command line (replay's and loadgen's job runs).
JOB_FLAGS = ["--window", f"{WINDOW_MS} ms", "--attribution-window", f"{ATTRIBUTION_MS} ms", "--out-of-orderness",
             f"{OOO_MS} ms", "--seed", "3", "--checkpoint-interval", "300 ms"]


def impression(rid: str, t: int, model_id: str, version: int, seed: int, teams: str) -> dict[str, Any]:
    """teams: one letter per slot, E (EXPLORE) or C (CURRENT); item ids are rid/slot."""
    return {
        "request_id": rid,
        "user_id": f"u-{rid}",
        "event_time": t,
        "model_id": model_id,
        "model_version": version,
        "explore_seed": seed,
        "slots": [
            {"item_id": f"{rid}/i{k}", "position": k, "team": "EXPLORE" if team == "E" else "CURRENT",
             "features": [0.5, float(k)], "explore_seed": None}
            for k, team in enumerate(teams)
        ],
        "state_features": [1.0, 2.0],
    }


def click(rid: str, item: str, t: int) -> dict[str, Any]:
    return {"request_id": rid, "item_id": item, "event_time": t, "user_id": None}


@dataclass
class Stream:
    impressions: list[dict[str, Any]] = field(default_factory=list)
    clicks: list[dict[str, Any]] = field(default_factory=list)
    #: Undecodable values appended after the good records: (topic logical name, bytes).
    garbage: list[tuple[str, bytes]] = field(default_factory=list)
    #: Another encoding of an impression (index -> bytes) written in place of serde's: the same record to a
    #: full Avro read, in bytes a decoder may mishandle.
    impression_bytes: dict[int, bytes] = field(default_factory=dict)


def hand_written_stream(n_windows: int = 4, seed: int = 7) -> Stream:
    """Two models over `n_windows` windows. m1 mostly prefers its explore lists (ACCEPTs), m2 mostly
    not; special records exercise UNKNOWN_REQUEST, ITEM_NOT_SHOWN, OUTSIDE_WINDOW (before and after),
    DUPLICATE (also one whose earlier copy arrives second), DUPLICATE_IMPRESSION and MALFORMED.
    Records are in event-time order up to less than the watermark's out-of-orderness."""
    rng = random.Random(seed)
    s = Stream()
    events: list[tuple[int, int, str, dict[str, Any]]] = []  # (produce time, tiebreak, topic, record)

    def add_imp(rec: dict[str, Any]) -> None:
        events.append((rec["event_time"], len(events), "impressions", rec))

    def add_click(rec: dict[str, Any], produce_at: int | None = None) -> None:
        events.append((rec["event_time"] if produce_at is None else produce_at, len(events), "clicks", rec))

    n = 0
    for w in range(n_windows):
        for k in range(12):
            for model_id, p_explore in (("m1", 0.8), ("m2", 0.25)):
                n += 1
                rid = f"r{n:04d}"
                t = T0 + w * WINDOW_MS + k * 700 + rng.randrange(0, 300)
                version = 1 if model_id == "m1" else 0
                seed_ = 100 + w if k % 3 else 200 + w  # two explore seeds per window
                teams = "".join(rng.choice("EC") for _ in range(4))
                add_imp(impression(rid, t, model_id, version, seed_, teams))
                if rng.random() < 0.7:
                    want = "E" if rng.random() < p_explore else "C"
                    slots = [i for i, tm in enumerate(teams) if tm == want] or [0]
                    slot = rng.choice(slots)
                    add_click(click(rid, f"{rid}/i{slot}", t + rng.randrange(50, ATTRIBUTION_MS)))
    # Rule breakers (all within window 1 so they are checked mid-stream, not only at the end).
    base = T0 + WINDOW_MS
    add_imp(impression("dup-imp", base + 1000, "m1", 1, 101, "ECEC"))
    add_imp(impression("dup-imp", base + 1000, "m1", 1, 101, "CCCC"))  # same time, later offset
    add_click(click("dup-imp", "dup-imp/i0", base + 1500))
    add_click(click("no-such-request", "x", base + 2000))
    add_imp(impression("rules", base + 2500, "m1", 1, 101, "EECC"))
    add_click(click("rules", "not-shown", base + 2600))
    add_click(click("rules", "rules/i1", base + 2500 + ATTRIBUTION_MS + 1))  # after the window
    add_click(click("rules", "rules/i0", base + 2000))  # before its impression
    add_click(click("rules", "rules/i0", base + 3300))  # counted: the earliest valid one...
    add_click(click("rules", "rules/i0", base + 3100), produce_at=base + 3400)  # ...no, this one is
    add_click(click("rules", "rules/i2", base + 3000))
    add_click(click("rules", "rules/i2", base + 3200))  # DUPLICATE of the one above
    add_click(click("early", "early/i0", base + 2900))  # arrives before its impression
    add_imp(impression("early", base + 2950, "m2", 0, 101, "EC"))
    for _, _, topic, rec in sorted(events, key=lambda e: (e[0], e[1])):
        (s.impressions if topic == "impressions" else s.clicks).append(rec)
    s.garbage = [("impressions", b"\x00\xffnot avro"), ("clicks", b""), ("clicks", b"\x02a")]
    return s


def with_negative_block_size(rec: dict[str, Any]) -> bytes:
    """`rec` (whose state_features hold one float) encoded with that array as one block of count -1 and byte
    size -2: a full read (fastavro, Avro's) ignores the size and reads the record back, while Avro's skip
    of a projected-away array jumps back by 2, onto the count, and loops for ever."""
    assert len(rec["state_features"]) == 1
    one = serde.encode("Impression", rec)
    empty = serde.encode("Impression", {**rec, "state_features": []})
    at = next(i for i, (a, b) in enumerate(zip(one, empty, strict=False)) if a != b)
    assert one[at] == 0x02 and empty[at] == 0x00  # the block count 1, where the empty array ends
    value = one[:at] + b"\x01\x03" + one[at + 1:]  # zig-zag -1 (count), -2 (byte size), the float, 0
    assert serde.decode("Impression", value) == serde.decode("Impression", one)
    return value


def produce_stream(bootstrap: str, names: TopicNames, stream: Stream) -> None:
    """Write the stream in order (keys: request_id), good records first, garbage last."""
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    try:
        for i, rec in enumerate(stream.impressions):
            value = stream.impression_bytes.get(i) or serde.encode("Impression", rec)
            producer.send(names.impressions, key=rec["request_id"].encode(), value=value)
        for rec in stream.clicks:
            producer.send(names.clicks, key=rec["request_id"].encode(), value=serde.encode("Click", rec))
        for logical, raw in stream.garbage:
            producer.send(names.name(logical), key=b"garbage", value=raw)
        producer.flush()
    finally:
        producer.close()


def publish(bootstrap: str, topic: str, records: Iterable[tuple[bytes, bytes]]) -> None:
    from kafka import KafkaProducer

    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    try:
        for key, value in records:
            producer.send(topic, key=key, value=value)
        producer.flush()
    finally:
        producer.close()


def read_committed(bootstrap: str, topic: str, timeout_s: float = 20.0) -> list[Any]:
    """Every committed record of `topic` (all partitions, offset order per partition)."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                             isolation_level="read_committed", max_partition_fetch_bytes=64 * 1024 * 1024)
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or [])]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps) and time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=300).values():
                out.extend(records)
        return sorted(out, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close()


def initial_major(cfg: Any, model_id: str, version: int, created_at: int) -> dict[str, Any]:
    """The job's seed MAJOR for `cfg` (MinorUpdateConfig), written without explore parameters, as records
    of older versions are: the learner and ranker then use their configured ones."""
    from models.initial_model import initial_drn_record

    return initial_drn_record(model_id, cfg.initial_state_dim, cfg.initial_action_dim, cfg.seed,
                              version=version, created_at=created_at)
