"""How fast every committed record of a range is read: kafka-python (`read_span_records`, what the major update
and the monitor use) against librdkafka (`read_span_values`, what `drnflow topics --exact` uses), side by
side on the same topic. On a private broker on free ports: --records records of --size bytes in transactions
of 1,000 over 2 partitions, then --repeats reads with each reader, taking turns; medians in records/s, the
ratio, and the load average beside each (a shared two-core machine).

Run: PYTHONPATH=. .venv/bin/python bench/bench_topic_read.py [--records 300000 --size 120 --repeats 3]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import uuid

from machine import loadavg  # bench/machine.py: the scripts run with bench/ on sys.path

from drnflow.demo.private_broker import start_private_broker
from operators import kafka_io
from operators.kafka_io.clients import confluent_producer


def write(bootstrap: str, topic: str, records: int, size: int) -> None:
    from kafka.admin import NewTopic

    admin = kafka_io.admin(bootstrap, "bench-topic-read")
    try:
        admin.create_topics([NewTopic(topic, num_partitions=2, replication_factor=1)])
    finally:
        admin.close()
    producer = confluent_producer(bootstrap, "bench-topic-read", **{"transactional.id": f"bench-{topic}"})
    producer.init_transactions(30)
    value = b"x" * size
    for first in range(0, records, 1_000):
        producer.begin_transaction()
        for i in range(first, min(first + 1_000, records)):
            producer.produce(topic, key=f"r{i}".encode(), value=value, partition=i % 2)
            if i % 10_000 == 0:
                producer.poll(0)
        producer.commit_transaction(60)


def read_python(bootstrap: str, spans: list[kafka_io.PartitionSpan]) -> int:
    reader = kafka_io.consumer(bootstrap, "bench-topic-read")
    try:
        return sum(1 for _ in kafka_io.read_span_records(reader, spans, 60))
    finally:
        reader.close()


def read_librdkafka(bootstrap: str, spans: list[kafka_io.PartitionSpan]) -> int:
    return sum(1 for _ in kafka_io.read_span_values(bootstrap, spans, 60))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--records", type=int, default=300_000)
    p.add_argument("--size", type=int, default=120, help="value bytes (a click is about 60, an impression 700)")
    p.add_argument("--repeats", type=int, default=3)
    args = p.parse_args()
    broker = start_private_broker("bench-topic-read")
    try:
        bootstrap = broker.config.bootstrap
        topic = f"read-{uuid.uuid4().hex[:8]}"
        t0 = time.monotonic()
        write(bootstrap, topic, args.records, args.size)
        print(f"wrote {args.records:,} records of {args.size} B in {time.monotonic() - t0:.1f} s")
        reader = kafka_io.consumer(bootstrap, "bench-topic-read")
        try:
            spans = kafka_io.whole_topic(reader, topic)
        finally:
            reader.close()
        rates: dict[str, list[float]] = {"kafka-python": [], "librdkafka": []}
        for _ in range(args.repeats):
            for name, read in (("kafka-python", read_python), ("librdkafka", read_librdkafka)):
                t0 = time.monotonic()
                n = read(bootstrap, spans)
                seconds = time.monotonic() - t0
                if n != args.records:
                    print(f"{name} read {n} records, not {args.records}", file=sys.stderr)
                    return 1
                rates[name].append(n / seconds)
                print(f"  {name:>12}: {n / seconds:>10,.0f} records/s (load {loadavg()})", flush=True)
        python, rd = (statistics.median(rates[k]) for k in ("kafka-python", "librdkafka"))
        print(f"median of {args.repeats}: kafka-python {python:,.0f} records/s, librdkafka {rd:,.0f} records/s "
              f"({rd / python:.1f}×), load {loadavg()}")
        return 0
    finally:
        broker.stop()


if __name__ == "__main__":
    sys.exit(main())
