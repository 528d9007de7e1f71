"""Foundation smoke job: count impressions and clicks per tumbling event-time window, all in the JVM.

Clicks are decoded by Flink's Avro format (their schema maps 1:1 onto a SQL row); impressions (whose
enum and nested records Flink cannot derive) are counted by their Kafka record timestamp, which
drnflow's producers set to the event time. The output topic `<prefix>window-counts` gets one JSON row
per (window, topic). `make demo` runs it until the later jobs land.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from operators.flinkenv import FlinkEnvConfig, table_env
from schemas.durations import parse_duration_ms
from schemas.topics import TopicNames

OUTPUT_TOPIC = "window-counts"


@dataclass(frozen=True)
class WindowCountConfig:
    bootstrap: str
    topic_prefix: str = ""
    window: str = "60s"
    out_of_orderness: str = "5s"
    bounded: bool = True
    group_id: str = "drnflow-window-count"

    def __post_init__(self) -> None:
        TopicNames(self.topic_prefix)  # validates the prefix
        if parse_duration_ms(self.window) <= 0:
            raise ValueError(f"window must be > 0, got {self.window!r}")
        parse_duration_ms(self.out_of_orderness)
        if not self.bootstrap:
            raise ValueError("bootstrap must name a broker, e.g. 127.0.0.1:9092")

    @property
    def output_topic(self) -> str:
        return f"{self.topic_prefix}{OUTPUT_TOPIC}"


def _kafka_options(cfg: WindowCountConfig, topic: str, source: bool) -> str:
    opts = {"connector": "kafka", "topic": topic, "properties.bootstrap.servers": cfg.bootstrap}
    if source:
        opts.update({
            "properties.group.id": cfg.group_id,
            "scan.startup.mode": "earliest-offset",
            "properties.isolation.level": "read_committed",
        })
        if cfg.bounded:
            opts["scan.bounded.mode"] = "latest-offset"
    return ", ".join(f"'{k}' = '{v}'" for k, v in opts.items())


def build(t_env: Any, cfg: WindowCountConfig) -> Any:
    """Declare sources, sink and the windowed count; returns the INSERT statement set (not executed)."""
    names = TopicNames(cfg.topic_prefix)
    window_s = parse_duration_ms(cfg.window) / 1000
    lag_s = parse_duration_ms(cfg.out_of_orderness) / 1000
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE clicks (
            request_id STRING NOT NULL,
            item_id STRING NOT NULL,
            event_time BIGINT NOT NULL,
            user_id STRING,
            ts AS TO_TIMESTAMP_LTZ(event_time, 3),
            WATERMARK FOR ts AS ts - INTERVAL '{lag_s}' SECOND
        ) WITH ({_kafka_options(cfg, names.clicks, True)}, 'value.format' = 'avro')
    """)
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE impressions (
            payload BYTES,
            ts TIMESTAMP_LTZ(3) METADATA FROM 'timestamp',
            WATERMARK FOR ts AS ts - INTERVAL '{lag_s}' SECOND
        ) WITH ({_kafka_options(cfg, names.impressions, True)}, 'value.format' = 'raw')
    """)
    t_env.execute_sql(f"""
        CREATE TEMPORARY TABLE window_counts (
            topic STRING,
            window_start BIGINT,
            window_end BIGINT,
            records BIGINT
        ) WITH ({_kafka_options(cfg, cfg.output_topic, False)}, 'format' = 'json')
    """)
    counts = """
        SELECT '{topic}', UNIX_TIMESTAMP(CAST(window_start AS STRING)) * 1000,
               UNIX_TIMESTAMP(CAST(window_end AS STRING)) * 1000, COUNT(*)
        FROM TABLE(TUMBLE(TABLE {table}, DESCRIPTOR(ts), INTERVAL '{w}' SECOND))
        GROUP BY window_start, window_end
    """
    statements = t_env.create_statement_set()
    statements.add_insert_sql(
        "INSERT INTO window_counts "
        + counts.format(topic=names.impressions, table="impressions", w=window_s)
        + " UNION ALL "
        + counts.format(topic=names.clicks, table="clicks", w=window_s)
    )
    return statements


def ensure_output_topic(cfg: WindowCountConfig) -> None:
    """The broker does not auto-create topics; this job's output topic is not one of design.md §2."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    from operators import kafka_io

    admin = kafka_io.admin(cfg.bootstrap, "drnflow-window-count")
    try:
        if cfg.output_topic not in admin.list_topics():
            admin.create_topics([NewTopic(cfg.output_topic, 1, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        admin.close()


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The job's flags (also parsed by `drnflow submit window-count` before it submits)."""
    from operators.kafka_io.addressing import add_kafka_arguments

    add_kafka_arguments(p)
    p.add_argument("--window", default="60s", help="tumbling window size, e.g. 60s, 30min")
    p.add_argument("--out-of-orderness", default="5s", help="bounded out-of-orderness of watermarks")
    p.add_argument("--bounded", action="store_true", help="stop at the offsets that exist at start")


def config_from_args(args: argparse.Namespace) -> WindowCountConfig:
    """Raises ValueError on a bad value."""
    return WindowCountConfig(bootstrap=args.bootstrap, topic_prefix=args.topic_prefix, window=args.window,
                             out_of_orderness=args.out_of_orderness, bounded=args.bounded)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m jobs.window_count", description=__doc__)
    add_arguments(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ValueError as e:
        print(f"window_count: {e}", file=sys.stderr)
        return 2
    ensure_output_topic(cfg)
    t_env = table_env(FlinkEnvConfig())
    # UNIX_TIMESTAMP of a window bound must not depend on the machine's time zone.
    t_env.get_config().set_local_timezone("UTC")
    result = build(t_env, cfg).execute()
    result.wait()
    return 0


if __name__ == "__main__":
    sys.exit(main())
