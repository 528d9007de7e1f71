"""Replay throughput (records/s, as fast as possible) with confluent-kafka and with kafka-python, next to a
plain consume of the same topics with each client, measured in the same run on a private broker.

Run: `.venv/bin/python bench/bench_replay.py [--records N] [--repeats R] [--bootstrap HOST:PORT]`.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drnflow.stack import process
from drnflow.stack.kafka import KafkaBroker, KafkaConfig, create_topics
from drnflow.tools.replay import ReplayConfig, replay
from operators.kafka_io import RecordRange, RecordWriter, available_clients, read_partition
from schemas import serde
from schemas.topics import TopicNames

T0 = 1_700_000_000_000


def produce_log(bootstrap: str, names: TopicNames, n: int, seed: int = 0) -> None:
    """n impressions (4 slots) and n/5 clicks, event-time ordered, keyed by request id."""
    rng = random.Random(seed)
    writer = RecordWriter(bootstrap, "confluent" if "confluent" in available_clients() else "kafka-python")
    t = T0
    for i in range(n):
        t += rng.randrange(0, 20)
        rid = f"r{i:08d}"
        imp: dict[str, Any] = {
               "request_id": rid, "user_id": f"u{rng.randrange(1000)}", "event_time": t, "model_id": "m1",
               "model_version": 1, "explore_seed": 7, "slots": [
                   {"item_id": f"i{rng.randrange(5000)}", "position": k, "team": rng.choice(["EXPLORE", "CURRENT"]),
                    "features": [0.1] * 8, "explore_seed": None} for k in range(4)],
               "state_features": [0.2] * 8, "explore_seeds": [], "interleaving": "team-draft", "generator": None}
        writer.send(names.impressions, rid.encode(), serde.encode("Impression", imp, check=False), 0, t)
        if i % 5 == 0:
            c = {"request_id": rid, "item_id": imp["slots"][0]["item_id"], "event_time": t + 500, "user_id": None}
            writer.send(names.clicks, rid.encode(), serde.encode("Click", c, check=False), 0, t + 500)
    writer.close()


def consume_all(bootstrap: str, names: TopicNames, client: str) -> int:
    n = 0
    for topic in (names.impressions, names.clicks):
        for _ in read_partition(bootstrap, topic, 0, RecordRange(), None, client):  # type: ignore[arg-type]
            n += 1
    return n


def plain_kafka_python_consume(bootstrap: str, names: TopicNames) -> int:
    """The baseline the issue asks for: a bare KafkaConsumer loop, no drnflow code."""
    from kafka import KafkaConsumer, TopicPartition

    n = 0
    for topic in (names.impressions, names.clicks):
        consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                 max_partition_fetch_bytes=16 * 1024 * 1024, fetch_max_bytes=64 * 1024 * 1024)
        tp = TopicPartition(topic, 0)
        consumer.assign([tp])
        consumer.seek_to_beginning(tp)
        end = consumer.end_offsets([tp])[tp]
        while consumer.position(tp) < end:
            for records in consumer.poll(timeout_ms=500, max_records=5000).values():
                n += len(records)
        consumer.close()
    return n


def timed(fn: Callable[[], int], repeats: int) -> tuple[float, int]:
    times, count = [], 0
    for _ in range(repeats):
        t0 = time.perf_counter()
        count = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), count


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--records", type=int, default=100_000, help="impressions (clicks: a fifth of that)")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--bootstrap", default=None, help="use this broker instead of starting a private one")
    args = ap.parse_args()
    broker = None
    bootstrap = args.bootstrap
    if bootstrap is None:
        state = Path(tempfile.mkdtemp(prefix="drnflow-bench-replay-"))
        broker = KafkaBroker(KafkaConfig(state_dir=state, port=process.free_port(),
                                         controller_port=process.free_port()))
        bootstrap = broker.start().bootstrap
    assert bootstrap is not None
    try:
        src = TopicNames(f"bench{uuid.uuid4().hex[:6]}.")
        create_topics(bootstrap, src)
        t0 = time.perf_counter()
        produce_log(bootstrap, src, args.records)
        print(f"produced {args.records} impressions + {args.records // 5} clicks in {time.perf_counter() - t0:.1f} s")
        results: dict[str, tuple[float, int]] = {}
        results["plain kafka-python consume"] = timed(lambda: plain_kafka_python_consume(bootstrap, src),
                                                      args.repeats)
        for client in available_clients():
            def read_all(c: str = client) -> int:
                return consume_all(bootstrap, src, c)

            results[f"drnflow read, {client}"] = timed(read_all, args.repeats)

            def one_replay(c: str = client) -> int:
                dst = TopicNames(f"rp{uuid.uuid4().hex[:8]}.")
                res = replay(ReplayConfig(bootstrap=bootstrap, from_prefix=src.prefix, to_prefix=dst.prefix,
                                          client=c, progress=False, with_weights=False))  # type: ignore[arg-type]
                return res.total

            results[f"replay (read+write), {client}"] = timed(one_replay, args.repeats)
        base = results["plain kafka-python consume"]
        base_rate = base[1] / base[0]
        print(f"\n{'what':<34} {'records':>9} {'median s':>9} {'records/s':>11} {'vs plain kafka-python':>22}")
        for name, (secs, count) in results.items():
            rate = count / secs
            print(f"{name:<34} {count:>9} {secs:>9.2f} {rate:>11,.0f} {rate / base_rate:>21.2f}x")
    finally:
        if broker is not None:
            broker.stop()


if __name__ == "__main__":
    main()
