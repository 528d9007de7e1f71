"""Every schema round-trips, bad bytes fail with the schema's name, and schemas stay backward compatible."""

from __future__ import annotations

import json

import fastavro
import pytest

from schemas import PREVIOUS_DIR, SCHEMA_FILES, serde

EXAMPLES: dict[str, dict[str, object]] = {
    "Impression": {
        "request_id": "r-1", "user_id": "u-7", "event_time": 1_700_000_000_123, "model_id": "drn",
        "model_version": 3, "explore_seed": 2**62 + 5,
        "slots": [
            {"item_id": "i-1", "position": 0, "team": "CURRENT", "features": [0.5, -1.25], "explore_seed": None},
            {"item_id": "i-2", "position": 1, "team": "EXPLORE", "features": [1.0, 2.0], "explore_seed": 9},
        ],
        "state_features": [0.25, 0.75, 1.5], "explore_seeds": [9], "interleaving": "team_draft",
        "generator": None, "pdgd": {"temperature": 0.5, "log_rest": -1.25},
    },
    "Click": {"request_id": "r-1", "item_id": "i-2", "event_time": 1_700_000_001_000, "user_id": "u-7"},
    "ModelWeights": {
        "model_id": "drn", "version": 4, "parent_version": 3, "kind": "MINOR", "created_at": 1_700_000_060_000,
        "window_start": 1_700_000_000_000, "window_end": 1_700_000_060_000, "explore_seeds": [9, 11],
        "weights": b"\x00\x00\x80?\x00\x00\x00@", "layout": [{"name": "w", "shape": [2]}],
        "checksum": "ab" * 32, "architecture": "{}",
    },
    "WinRate": {
        "model_id": "drn", "window_start": 0, "window_end": 60_000, "model_version": 3, "explore_seed": 9,
        "impressions": 10, "explore_wins": 4, "current_wins": 2, "ties": 1, "no_clicks": 3,
        "win_rate": 4 / 6, "decision": "ACCEPT",
    },
    "MajorUpdateTrigger": {
        "model_id": "drn", "trigger_id": "drn-3-3600000", "created_at": 3_600_000, "reason": "SCHEDULE",
        "base_version": 3, "minor_updates_since_major": 2, "event_time_start": 0, "event_time_end": 3_600_000,
        "impression_offsets": [{"topic": "impressions", "partition": 0, "start_offset": 0, "end_offset": 10}],
        "click_offsets": [],
    },
    "DeadLetter": {
        "source_topic": "clicks", "source_partition": 0, "source_offset": 17, "raw_key": b"r-9",
        "raw_value": b"\x01\x02", "reason": "UNKNOWN_REQUEST", "detail": "no impression r-9", "job": "minor-update",
        "created_at": 5, "raw_value_size": 2,
        "raw_value_sha256": "a12871fee210fb8619291eaea194581cbd2531e4b23759d225f6806923f63222",
    },
}


def test_every_schema_has_an_example() -> None:
    assert set(EXAMPLES) == set(SCHEMA_FILES)


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_round_trip(name: str) -> None:
    record = EXAMPLES[name]
    data = serde.encode(name, record)
    assert serde.decode(name, data) == record


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_timestamps_decode_as_int_millis(name: str) -> None:
    decoded = serde.decode(name, serde.encode(name, EXAMPLES[name]))
    for field in ("event_time", "created_at", "window_start", "window_end"):
        if field in decoded and decoded[field] is not None:
            assert type(decoded[field]) is int


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_bytes_match_an_independent_avro_writer(name: str) -> None:
    """Plain Avro binary: a generic writer given only the .avsc file produces the same bytes."""
    schema = fastavro.parse_schema(json.loads((PREVIOUS_DIR.parent / SCHEMA_FILES[name]).read_text()))
    import io

    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, schema, EXAMPLES[name])
    assert serde.encode(name, EXAMPLES[name]) == buf.getvalue()


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_garbage_names_the_schema(name: str) -> None:
    with pytest.raises(serde.SerdeError, match=rf"^{name}: malformed Avro"):
        serde.decode(name, b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01")


def test_truncated_record_is_malformed() -> None:
    data = serde.encode("Click", EXAMPLES["Click"])
    with pytest.raises(serde.SerdeError, match="Click: malformed Avro"):
        serde.decode("Click", data[:-3])


def test_trailing_bytes_are_malformed() -> None:
    data = serde.encode("Click", EXAMPLES["Click"])
    with pytest.raises(serde.SerdeError, match="2 trailing bytes"):
        serde.decode("Click", data + b"\x00\x00")


def test_wrong_type_names_the_field() -> None:
    bad = dict(EXAMPLES["Click"], event_time="yesterday")
    with pytest.raises(serde.SerdeError, match="event_time"):
        serde.encode("Click", bad)


def test_unknown_schema_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="unknown schema 'Klick'"):
        serde.encode("Klick", {})


def test_not_bytes_is_a_clear_error() -> None:
    with pytest.raises(serde.SerdeError, match="expected bytes, got str"):
        serde.decode("Click", "not bytes")  # type: ignore[arg-type]


@pytest.mark.parametrize("name", sorted(SCHEMA_FILES))
def test_backward_compatible_with_previous_version(name: str) -> None:
    """Data written with the previous released schema is readable with the current one."""
    previous = json.loads((PREVIOUS_DIR / SCHEMA_FILES[name]).read_text())
    prev_parsed = fastavro.parse_schema(serde._strip_logical_types(previous))
    prev_fields = {f["name"] for f in previous["fields"]}
    old_record = {k: v for k, v in EXAMPLES[name].items() if k in prev_fields}
    import io

    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, prev_parsed, old_record)
    current = serde.decode_with(name, buf.getvalue(), previous)
    for key, value in old_record.items():
        assert current[key] == value
    current_fields = {f["name"] for f in serde.schema_json(name)["fields"]}
    for added in current_fields - prev_fields:
        field = next(f for f in serde.schema_json(name)["fields"] if f["name"] == added)
        assert "default" in field, f"{name}.{added} was added without a default: old data cannot be read"


def test_decode_reads_bytes_of_the_previous_release() -> None:
    """Values carry no writer schema: serde.decode (and the JVM decoder) read the previous release's bytes,
    which a topic logged before an appended field still holds, and no value decodes under both."""
    name = "Impression"
    previous = serde.previous_schema_json(name)
    assert previous is not None, "Impression changed since the last release; this test reads its old bytes"
    prev_parsed = fastavro.parse_schema(serde._strip_logical_types(dict(previous)))
    prev_fields = {f["name"] for f in previous["fields"]}
    import io

    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, prev_parsed, {k: v for k, v in EXAMPLES[name].items() if k in prev_fields})
    old = serde.decode(name, buf.getvalue())
    assert old["pdgd"] is None and old["request_id"] == EXAMPLES[name]["request_id"]
    new = serde.encode(name, EXAMPLES[name])
    assert serde.decode(name, new) == EXAMPLES[name]
    left = io.BytesIO(new)
    fastavro.schemaless_reader(left, prev_parsed, None)
    assert left.tell() < len(new), "new bytes must not be a complete record of the previous schema"
    with pytest.raises(serde.SerdeError, match="malformed"):
        serde.decode(name, buf.getvalue()[:-1])


def test_removed_field_without_default_is_detected() -> None:
    """The compatibility check can fail: a reader field with no default breaks old data."""
    previous = json.loads((PREVIOUS_DIR / "click.avsc").read_text())
    prev_parsed = fastavro.parse_schema(serde._strip_logical_types(previous))
    import io

    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, prev_parsed, EXAMPLES["Click"])
    stricter = dict(previous, fields=[*previous["fields"], {"name": "new_required", "type": "string"}])
    reader = fastavro.parse_schema(serde._strip_logical_types(stricter))
    with pytest.raises(Exception, match=r"new_required|default"):
        fastavro.schemaless_reader(io.BytesIO(buf.getvalue()), prev_parsed, reader)


def test_container_round_trip(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "clicks.avro"
    n = serde.write_container(str(path), "Click", [EXAMPLES["Click"]] * 3)
    name, records = serde.read_container(str(path))
    assert (n, name, list(records)) == (3, "Click", [EXAMPLES["Click"]] * 3)
