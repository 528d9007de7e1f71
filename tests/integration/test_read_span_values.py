"""read_span_values (librdkafka, for `drnflow topics --exact`) reads what read_span_records (kafka-python)
reads: every committed record of the spans, none of an aborted transaction, and it stops at the spans'
ends even when the log ends in a transaction marker or a writer goes on writing. Against a real broker."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from operators import kafka_io
from operators.kafka_io.clients import confluent_producer

pytestmark = pytest.mark.integration


def create(bootstrap: str, partitions: int) -> str:
    from kafka.admin import NewTopic

    name = f"spans-{uuid.uuid4().hex[:8]}"
    admin = kafka_io.admin(bootstrap, "test-read-span-values")
    try:
        admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        admin.close()
    return name


def transaction(producer: Any, topic: str, first: int, n: int, commit: bool) -> None:
    producer.begin_transaction()
    for i in range(first, first + n):
        producer.produce(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), partition=i % 2,
                         timestamp=1_700_000_000_000 + i)
    if commit:
        producer.commit_transaction(30)
    else:
        producer.flush(30)
        producer.abort_transaction(30)


def both_readers(bootstrap: str, topic: str) -> tuple[list[tuple[bytes | None, int]], list[tuple[bytes | None, int]]]:
    reader = kafka_io.consumer(bootstrap, "test-read-span-values")
    try:
        spans = kafka_io.whole_topic(reader, topic)
        python = [(r.value, int(r.timestamp)) for r in kafka_io.read_span_records(reader, spans, 30)]
    finally:
        reader.close()
    return sorted(kafka_io.read_span_values(bootstrap, spans, 30)), sorted(python)


def test_committed_records_only_up_to_the_spans_end(kafka_bootstrap: str) -> None:
    topic = create(kafka_bootstrap, partitions=2)
    producer = confluent_producer(kafka_bootstrap, "test-read-span-values",
                                  **{"transactional.id": f"t-{topic}"})
    producer.init_transactions(30)
    transaction(producer, topic, 0, 300, commit=True)
    transaction(producer, topic, 300, 50, commit=False)
    transaction(producer, topic, 350, 100, commit=True)  # the log of each partition ends in a commit marker

    fast, slow = both_readers(kafka_bootstrap, topic)
    expected = sorted((f"v{i}".encode(), 1_700_000_000_000 + i) for i in [*range(300), *range(350, 450)])
    assert fast == slow == expected

    reader = kafka_io.consumer(kafka_bootstrap, "test-read-span-values")
    try:
        spans = kafka_io.whole_topic(reader, topic)
    finally:
        reader.close()
    transaction(producer, topic, 450, 40, commit=True)  # written after the spans were taken: not read
    assert sorted(kafka_io.read_span_values(kafka_bootstrap, spans, 30)) == expected
    assert list(kafka_io.read_span_values(kafka_bootstrap, [], 30)) == []
