"""`drnflow export` / `drnflow import` on the real broker: a topic range goes to an Avro container file and
comes back record for record (partition, key, timestamp, headers, value bytes, malformed values too)."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import fastavro
import pytest

from drnflow.cli import main
from drnflow.stack import process
from drnflow.stack.kafka import TopicSettings, create_topics
from schemas import serde
from schemas.topics import TopicNames
from tests.integration.minor_update_data import hand_written_stream, read_committed

pytestmark = pytest.mark.integration


def fresh(bootstrap: str, partitions: int = 2) -> TopicNames:
    names = TopicNames(f"x{uuid.uuid4().hex[:8]}.")
    create_topics(bootstrap, names, TopicSettings(partitions=partitions))
    return names


def produce_clicks(bootstrap: str, names: TopicNames) -> None:
    from kafka import KafkaProducer

    stream = hand_written_stream(n_windows=2)
    producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
    for i, rec in enumerate(stream.clicks):
        producer.send(names.clicks, key=rec["request_id"].encode(), value=serde.encode("Click", rec),
                      partition=i % 2, timestamp_ms=rec["event_time"], headers=[("n", str(i).encode())])
    producer.send(names.clicks, key=None, value=b"\x02a", partition=1, timestamp_ms=5)  # malformed
    producer.send(names.clicks, key=b"tombstone", value=None, partition=0, timestamp_ms=6)
    producer.flush()
    producer.close()


def view(bootstrap: str, topic: str) -> list[tuple[Any, ...]]:
    return [(r.partition, r.offset, r.key, r.value, r.timestamp, list(r.headers)) for r in
            read_committed(bootstrap, topic)]


@pytest.mark.parametrize("client", ["kafka-python", "confluent"])
def test_export_then_import_round_trips_exactly(kafka_bootstrap: str, tmp_path: Path, client: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    src, dst = fresh(kafka_bootstrap), fresh(kafka_bootstrap)
    produce_clicks(kafka_bootstrap, src)
    path = tmp_path / "clicks.avro"
    assert main(["export", "clicks", "--prefix", src.prefix, "--bootstrap", kafka_bootstrap, "-o", str(path),
                 "--client", client]) == 0
    original = view(kafka_bootstrap, src.clicks)
    assert f"exported {len(original)} records" in capsys.readouterr().out
    # Any Avro reader sees the clicks themselves, with the schema embedded.
    with open(path, "rb") as f:
        rows: list[Any] = list(fastavro.reader(f))
    assert sorted(r["value"]["request_id"] for r in rows if r["value"]) == sorted(
        serde.decode("Click", v)["request_id"] for _, _, _, v, _, _ in original if v and v != b"\x02a")
    assert [r["raw_value"] for r in rows if r["raw_value"] is not None] == [b"\x02a"]
    assert main(["import", str(path), "--prefix", dst.prefix, "--bootstrap", kafka_bootstrap,
                 "--client", client]) == 0
    assert view(kafka_bootstrap, dst.clicks) == original


def test_export_of_an_offset_and_time_range(kafka_bootstrap: str, tmp_path: Path) -> None:
    src = fresh(kafka_bootstrap, partitions=1)
    stream = hand_written_stream(n_windows=2)
    from tests.integration.minor_update_data import produce_stream

    produce_stream(kafka_bootstrap, src, stream)
    times = [r["event_time"] for r in stream.impressions]
    lo, hi = times[10], times[30]
    path = tmp_path / "imps.avro"
    assert main(["export", "impressions", "--prefix", src.prefix, "--bootstrap", kafka_bootstrap, "-o", str(path),
                 "--from-time", str(lo), "--to-time", str(hi), "--from-offset", "5"]) == 0
    with open(path, "rb") as f:
        got = [(r["offset"], r["value"]["event_time"]) for r in fastavro.reader(f)]  # type: ignore[index,call-overload]
    want = [(i, r["event_time"]) for i, r in enumerate(stream.impressions) if i >= 5 and lo <= r["event_time"] < hi]
    assert got == want and len(want) >= 15


def test_bad_input_gets_one_sentence(kafka_bootstrap: str, tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    not_avro = tmp_path / "x.avro"
    not_avro.write_bytes(b"hello")
    other = tmp_path / "other.avro"
    with open(other, "wb") as f:
        fastavro.writer(f, {"type": "record", "name": "Thing", "fields": [{"name": "a", "type": "int"}]}, [{"a": 1}])
    dead = f"127.0.0.1:{process.free_port()}"
    names = fresh(kafka_bootstrap, partitions=1)
    cases = [
        (["export", "clicks", "--prefix", "nope.", "--bootstrap", kafka_bootstrap, "-o", str(tmp_path / "a.avro")],
         "topic 'nope.clicks' does not exist"),
        (["export", "clicks", "--bootstrap", dead, "-o", str(tmp_path / "a.avro")], "cannot reach the Kafka broker"),
        (["export", "clicks", "--bootstrap", kafka_bootstrap, "--from-offset", "9", "--to-offset", "3", "-o", "a"],
         "is empty"),
        (["export", "clicks", "--bootstrap", kafka_bootstrap, "--from-time", "soon", "-o", "a"], "ISO-8601"),
        (["export", "clicks", "--prefix", names.prefix, "--bootstrap", kafka_bootstrap, "-o", "/no/such/dir/a.avro"],
         "does not exist"),
        (["import", str(not_avro), "--bootstrap", kafka_bootstrap], "is not an Avro container file"),
        (["import", str(other), "--bootstrap", kafka_bootstrap], "not a `drnflow export` file"),
        (["import", str(tmp_path / "missing.avro"), "--bootstrap", kafka_bootstrap], "does not exist"),
    ]
    for argv, sentence in cases:
        code = main(argv)
        err = capsys.readouterr().err
        assert code != 0, argv
        assert sentence in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, (argv, err)
