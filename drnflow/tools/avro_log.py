"""Export a topic range to an Avro object container file and import it back, record for record.

Each container record wraps one Kafka record: its partition, offset, timestamp, key and headers, and
the value as the topic's own Avro record (readable by any Avro tool, schema embedded). A value whose
re-encoding would not give back its exact bytes (or that does not decode at all) also keeps its raw
bytes, so import always writes back exactly what export read.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from drnflow.errors import CommandError
from operators.kafka_io import Client, KafkaRecord, RecordRange, RecordWriter, read_topic, require_topics
from schemas import serde
from schemas.topics import TOPIC_SCHEMAS, TopicNames

NAMESPACE = "drnflow.log"
META_TOPIC = "drnflow.topic"
META_SOURCE = "drnflow.source-topic"
META_SCHEMA = "drnflow.schema"


def container_schema(record_name: str) -> dict[str, Any]:
    """The wrapper schema of an export of topics holding `record_name` values."""
    inner = copy.deepcopy(dict(serde.schema_json(record_name)))
    return {
        "type": "record",
        "name": f"Kafka{record_name}",
        "namespace": NAMESPACE,
        "doc": f"One Kafka record of a topic of {record_name} values, as `drnflow export` wrote it.",
        "fields": [
            {"name": "partition", "type": "int"},
            {"name": "offset", "type": "long"},
            {"name": "timestamp", "type": "long"},
            {"name": "key", "type": ["null", "bytes"]},
            {"name": "headers", "type": {"type": "array", "items": {
                "type": "record", "name": "Header", "fields": [
                    {"name": "name", "type": "string"}, {"name": "value", "type": "bytes"}]}}},
            {"name": "value", "type": ["null", inner]},
            {"name": "raw_value", "type": ["null", "bytes"], "default": None,
             "doc": "The value's bytes when `value` alone would not give them back (malformed or non-canonical)."},
        ],
    }


def _wrap(record: KafkaRecord, record_name: str) -> dict[str, Any]:
    value: dict[str, Any] | None = None
    raw: bytes | None = None
    if record.value is not None:
        try:
            value = serde.decode(record_name, record.value)
            if serde.encode(record_name, value, check=False) != record.value:
                raw = record.value
        except serde.SerdeError:
            value, raw = None, record.value
    return {"partition": record.partition, "offset": record.offset, "timestamp": record.timestamp,
            "key": record.key, "headers": [{"name": k, "value": v} for k, v in record.headers],
            "value": value, "raw_value": raw}


@dataclass(frozen=True)
class ExportResult:
    path: str
    topic: str
    records: int


def export_topic(bootstrap: str, prefix: str, logical: str, rng: RecordRange, path: str,
                 client: Client = "kafka-python") -> ExportResult:
    """Write the records of `<prefix><logical>` inside `rng` to the container file `path`."""
    import fastavro

    if logical not in TOPIC_SCHEMAS:
        raise CommandError(f"unknown topic {logical!r}; one of: {', '.join(TOPIC_SCHEMAS)}")
    record_name = TOPIC_SCHEMAS[logical]
    topic = TopicNames(prefix).name(logical)
    require_topics(bootstrap, [topic])
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise CommandError(f"folder {folder} does not exist; cannot write {path}")
    schema = fastavro.parse_schema(serde._strip_logical_types(container_schema(record_name)))
    count = 0

    def wrapped() -> Iterator[dict[str, Any]]:
        nonlocal count
        for r in read_topic(bootstrap, topic, rng, record_name, client):
            count += 1
            yield _wrap(r, record_name)

    tmp = f"{path}.part"
    with open(tmp, "wb") as f:
        fastavro.writer(f, schema, wrapped(), codec="deflate",
                        metadata={META_TOPIC: logical, META_SOURCE: topic, META_SCHEMA: record_name})
    os.replace(tmp, path)
    return ExportResult(path, topic, count)


@dataclass(frozen=True)
class ImportResult:
    path: str
    topic: str
    records: int


def open_export(path: str) -> tuple[str, str, Iterator[Mapping[str, Any]]]:
    """(logical topic, record name, wrapped records) of a file `export_topic` wrote."""
    import fastavro

    if not os.path.isfile(path):
        raise CommandError(f"file {path} does not exist")
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator below
    try:
        reader = fastavro.reader(f)
    except Exception:
        f.close()
        raise CommandError(f"{path} is not an Avro container file") from None
    meta = {k: (v.decode() if isinstance(v, bytes) else str(v)) for k, v in reader.metadata.items()}
    logical, record_name = meta.get(META_TOPIC), meta.get(META_SCHEMA)
    if logical not in TOPIC_SCHEMAS or record_name != TOPIC_SCHEMAS.get(logical or ""):
        f.close()
        name = reader.writer_schema.get("name", "?") if isinstance(reader.writer_schema, dict) else "?"
        raise CommandError(f"{path} is an Avro container of {name} records, not a `drnflow export` file")

    def records() -> Iterator[Mapping[str, Any]]:
        with f:
            try:
                yield from reader  # type: ignore[misc]
            except Exception as e:
                raise CommandError(f"{path} is damaged: {type(e).__name__}: {e}") from None

    return str(logical), str(record_name), records()


def import_file(bootstrap: str, prefix: str, path: str, client: Client = "kafka-python",
                topic: str | None = None, append: bool = False) -> ImportResult:
    """Produce the records of an export file to `<prefix><its topic>` (or `topic`), keeping partitions
    (where the target has them), keys, timestamps, headers and value bytes. A target that already holds
    records is refused unless `append`: importing the same file twice would duplicate every record."""
    from drnflow.tools.topic_summary import end_offsets

    logical, record_name, records = open_export(path)
    target = topic or TopicNames(prefix).name(logical)
    partitions = require_topics(bootstrap, [target])[target]
    held = sum(end_offsets(bootstrap, [target]).values())
    if held and not append:
        raise ValueError(f"topic {target!r} already holds records (end offsets sum to {held}); importing into it "
                         "would duplicate them if this file was imported before: import into a new --prefix, "
                         "or pass --append to add the records anyway")
    writer = RecordWriter(bootstrap, client)
    count = 0
    try:
        for r in records:
            raw = r.get("raw_value")
            if raw is not None:
                value: bytes | None = bytes(raw)
            elif r["value"] is not None:
                value = serde.encode(record_name, r["value"], check=False)
            else:
                value = None
            p = int(r["partition"])
            writer.send(target, r["key"], value, p if p < partitions else None, int(r["timestamp"]),
                        [(h["name"], bytes(h["value"])) for h in r["headers"]])
            count += 1
    finally:
        writer.close()
    return ImportResult(path, target, count)
