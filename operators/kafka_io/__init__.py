"""The Kafka glue, in one package: client factories (clients), offset spans and read-to-end (spans),
range reads and writes with either client (ranges). Every command and job opens Kafka through it."""

from operators.kafka_io.clients import KafkaIOError, admin, consumer, port_answers, producer
from operators.kafka_io.ranges import (
    CLIENTS,
    Client,
    KafkaRecord,
    RecordRange,
    RecordWriter,
    available_clients,
    list_topics,
    pick_client,
    read_partition,
    read_topic,
    record_time,
    require_broker,
    require_topics,
)
from operators.kafka_io.spans import (
    PartitionSpan,
    TopicLog,
    newest_timestamp_offsets,
    read_span_records,
    read_span_values,
    read_spans,
    read_to_end,
    spans_by_time,
    whole_topic,
)

__all__ = [
    "CLIENTS", "Client", "KafkaIOError", "KafkaRecord", "PartitionSpan", "RecordRange", "RecordWriter", "TopicLog",
    "admin", "available_clients", "consumer", "list_topics", "newest_timestamp_offsets", "pick_client",
    "port_answers", "producer",
    "read_partition", "read_span_records", "read_span_values", "read_spans", "read_to_end", "read_topic",
    "record_time", "require_broker",
    "require_topics", "spans_by_time", "whole_topic",
]
