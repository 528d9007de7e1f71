"""`drnflow topics`: what the topics of a prefix hold (partitions, records, event-time span)."""

from __future__ import annotations

import argparse
import json

from operators.kafka_io.addressing import add_kafka_arguments


def cmd_topics(args: argparse.Namespace) -> int:
    from drnflow.tools.timespec import format_time_ms
    from drnflow.tools.topic_summary import summarize
    from operators.kafka_io import require_broker

    require_broker(args.bootstrap)
    rows = summarize(args.bootstrap, args.topic_prefix, exact=args.exact)
    if args.json:
        print(json.dumps([r.__dict__ for r in rows], indent=2))
        return 0
    count_head = "records" if args.exact else "offsets"
    print(f"topics with prefix {args.topic_prefix!r} on {args.bootstrap}")
    print(f"{'topic':<36} {'parts':>5} {count_head:>10}  {'first':<24} {'last':<24}")
    for r in rows:
        if not r.exists:
            print(f"{r.name:<36} {'-':>5} {'missing':>10}")
            continue
        count = r.records if args.exact else r.offsets
        first = format_time_ms(r.first_ms) if r.first_ms is not None else "-"
        last = format_time_ms(r.last_ms) if r.last_ms is not None else "-"
        print(f"{r.name:<36} {r.partitions:>5} {count:>10}  {first:<24} {last:<24}")
    for r in rows:
        if r.reasons:
            print(f"{r.name} by reason: " + ", ".join(f"{k} {v}" for k, v in r.reasons.items()))
    missing = [r.name for r in rows if not r.exists]
    notes = ["impressions and clicks show event time, the other topics the Kafka record time"]
    if not args.exact:
        notes.append("offsets include transaction markers; the span's first time comes from each partition's "
                     "first 50 records, its last is the newest record's; --exact reads every committed record "
                     "and counts the dead letters by reason")
    if missing:
        notes.append(f"{len(missing)} missing: create them with `drnflow up --prefix {args.topic_prefix}`")
    for n in notes:
        print(f"  ({n})")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("topics", help="list a prefix's topics: partitions, records, event-time span",
                       description="List the six drnflow topics of a prefix with their partition count, size "
                                   "and the span of event time (or record time) they hold.")
    add_kafka_arguments(p)
    p.add_argument("--exact", action="store_true", help="read every committed record: exact counts and span")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.set_defaults(func=cmd_topics)
