"""The one Avro serializer of drnflow: plain Avro binary (no registry framing), schemas parsed once.

Timestamps travel as `long` millis. The writer accepts ints; the reader returns ints (not
datetimes), because every job and tool does arithmetic on event times.
"""

from __future__ import annotations

import copy
import io
import json
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import fastavro
from fastavro.validation import ValidationError, validate

from schemas import INTERNAL_SCHEMA_FILES, PREVIOUS_DIR, SCHEMA_DIR, SCHEMA_FILES

Record = dict[str, Any]


class SerdeError(ValueError):
    """A record could not be encoded or decoded; the message names the schema and the cause."""

    def __init__(self, schema_name: str, message: str) -> None:
        super().__init__(f"{schema_name}: {message}")
        self.schema_name = schema_name


def _strip_logical_types(node: Any) -> Any:
    """Drop `logicalType` so fastavro reads timestamp-millis as plain int (same bytes on the wire)."""
    if isinstance(node, dict):
        return {k: _strip_logical_types(v) for k, v in node.items() if k != "logicalType"}
    if isinstance(node, list):
        return [_strip_logical_types(v) for v in node]
    return node


def _read_schemas(directory: Any, files: Mapping[str, str]) -> dict[str, Mapping[str, Any]]:
    out: dict[str, Mapping[str, Any]] = {}
    for name, file in files.items():
        with open(directory / file, encoding="utf-8") as f:
            out[name] = json.load(f)
    return out


#: Read when the module is imported, never later: a Flink TaskManager in thread mode keeps the modules of
#: the first job it ran, and deletes that job's files when it ends, so a later job that read a schema file
#: lazily failed with FileNotFoundError (issue 12).
_SCHEMAS = _read_schemas(SCHEMA_DIR, {**SCHEMA_FILES, **INTERNAL_SCHEMA_FILES})
#: The last released copies (schemas/previous), where they differ from the current ones: bytes written by
#: the previous release are read with them (see `decode`).
_PREVIOUS = {name: schema for name, schema in _read_schemas(PREVIOUS_DIR, SCHEMA_FILES).items()
             if schema != _SCHEMAS[name]}


def schema_json(name: str) -> Mapping[str, Any]:
    """The schema as written in `schemas/<file>.avsc` (logical types kept)."""
    if name not in _SCHEMAS:
        raise KeyError(f"unknown schema {name!r}; known: {', '.join(sorted(_SCHEMAS))}")
    return _SCHEMAS[name]


@cache
def parsed_schema(name: str) -> Any:
    """The fastavro-parsed wire schema (logical types stripped: timestamps are int millis)."""
    return fastavro.parse_schema(_strip_logical_types(copy.deepcopy(dict(schema_json(name)))))


def encode(name: str, record: Mapping[str, Any], *, check: bool = True) -> bytes:
    """Encode one record of schema `name` to Avro binary.

    With `check`, the record is validated first so a wrong type names its field instead of
    failing deep in the encoder.
    """
    schema = parsed_schema(name)
    if check:
        try:
            validate(record, schema, raise_errors=True)
        except ValidationError as e:
            raise SerdeError(name, f"invalid record: {'; '.join(str(x) for x in e.errors) or e}") from None
    buf = io.BytesIO()
    try:
        fastavro.schemaless_writer(buf, schema, dict(record))
    except (TypeError, ValueError, KeyError, AttributeError, OverflowError) as e:
        raise SerdeError(name, f"cannot encode record: {e!r}") from None
    return buf.getvalue()


def previous_schema_json(name: str) -> Mapping[str, Any] | None:
    """The previous release's schema `name` when it differs from the current one, else None."""
    return _PREVIOUS.get(name)


def decode(name: str, data: bytes) -> Record:
    """Decode Avro binary written with schema `name`; bad or trailing bytes raise SerdeError.

    Values carry no writer schema, so bytes the previous release wrote (schemas/previous) are told apart by
    trying: fields are only ever appended, with defaults, so old bytes end too early for the current schema
    and new bytes are too long for the old one: at most one of the two reads a complete record.
    The JVM decoder (AvroEventDeserializer) does the same."""
    try:
        return _decode(name, data, parsed_schema(name))
    except SerdeError as current_error:
        previous = _PREVIOUS.get(name)
        if previous is None:
            raise
        try:  # a complete record of the previous release, read into the current schema in one pass
            return _decode(name, data, _parsed_previous(name), parsed_schema(name))
        except SerdeError:
            raise current_error from None


@cache
def _parsed_previous(name: str) -> Any:
    return fastavro.parse_schema(_strip_logical_types(copy.deepcopy(dict(_PREVIOUS[name]))))


def _decode(name: str, data: bytes, schema: Any, reader: Any = None) -> Record:
    """One complete record written with `schema` (read into `reader` when given); SerdeError otherwise."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise SerdeError(name, f"expected bytes, got {type(data).__name__}")
    buf = io.BytesIO(bytes(data))
    try:
        record = fastavro.schemaless_reader(buf, schema, reader)
    except Exception as e:  # fastavro raises many types on garbage: EOF, Unicode, Index, Value...
        raise SerdeError(name, f"malformed Avro ({len(data)} bytes): {type(e).__name__}: {e}") from None
    left = len(data) - buf.tell()
    if left:
        raise SerdeError(name, f"malformed Avro: {left} trailing bytes after a complete record")
    if not isinstance(record, dict):
        raise SerdeError(name, "malformed Avro: not a record")
    return record


def decode_with(name: str, data: bytes, writer_schema: Mapping[str, Any]) -> Record:
    """Decode bytes written with an older `writer_schema` into the current schema `name`."""
    reader = parsed_schema(name)
    writer = fastavro.parse_schema(_strip_logical_types(copy.deepcopy(dict(writer_schema))))
    try:
        record = fastavro.schemaless_reader(io.BytesIO(bytes(data)), writer, reader)
    except Exception as e:
        raise SerdeError(name, f"cannot resolve writer schema: {type(e).__name__}: {e}") from None
    if not isinstance(record, dict):
        raise SerdeError(name, "malformed Avro: not a record")
    return record


def write_container(path: str, name: str, records: Iterator[Mapping[str, Any]] | list[Any]) -> int:
    """Write records to an Avro object container file (for export); returns the count."""
    count = 0

    def counted() -> Iterator[Mapping[str, Any]]:
        nonlocal count
        for r in records:
            count += 1
            yield r

    with open(path, "wb") as f:
        fastavro.writer(f, parsed_schema(name), counted(), codec="deflate")
    return count


def read_container(path: str) -> tuple[str, Iterator[Record]]:
    """Open an Avro container file; returns (record name, iterator of records)."""
    f = open(path, "rb")  # noqa: SIM115 - closed by the generator
    try:
        reader = fastavro.reader(f)
    except Exception as e:
        f.close()
        raise SerdeError("container", f"{path} is not an Avro container file: {e}") from None
    schema = reader.writer_schema
    full = str(schema.get("name", "")) if isinstance(schema, dict) else ""
    short = full.rsplit(".", 1)[-1]

    def records() -> Iterator[Record]:
        with f:
            yield from reader  # type: ignore[misc]

    return short, records()
