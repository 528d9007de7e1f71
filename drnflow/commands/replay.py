"""`drnflow replay | export | import`: re-publish a logged range, and move topic ranges to and from Avro files."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from drnflow.errors import CommandError
from operators.kafka_io.addressing import add_bootstrap_argument, add_prefix_argument


def add_kafka_options(p: argparse.ArgumentParser) -> None:
    add_bootstrap_argument(p)
    p.add_argument("--client", choices=("confluent", "kafka-python"), default=None,
                   help="Kafka client library (default: confluent-kafka when installed, else kafka-python)")


def add_range_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("range (offsets per partition, end exclusive; times are event times, end exclusive)")
    g.add_argument("--from-offset", type=int, default=None, help="first offset (default: the beginning)")
    g.add_argument("--to-offset", type=int, default=None, help="stop before this offset (default: the end now)")
    g.add_argument("--from-time", default=None,
                   help="first event time: epoch millis or ISO-8601, e.g. 2023-11-14T22:13:20Z")
    g.add_argument("--to-time", default=None, help="stop before this event time")


def record_range(args: argparse.Namespace) -> Any:
    from drnflow.tools.timespec import parse_time_ms
    from operators.kafka_io import RecordRange

    try:
        return RecordRange(
            from_offset=args.from_offset, to_offset=args.to_offset,
            from_time=None if args.from_time is None else parse_time_ms(args.from_time),
            to_time=None if args.to_time is None else parse_time_ms(args.to_time),
        )
    except ValueError as e:
        raise CommandError(str(e)) from None


def cmd_replay(args: argparse.Namespace) -> int:
    from drnflow.tools.replay import ReplayConfig, compare_weights, replay, run_minor_update_bounded
    from operators.kafka_io import pick_client, require_broker

    job_args = list(args.job_args)
    if job_args and not args.run_minor_update:
        raise CommandError(f"job flags {' '.join(job_args)!r} given without --run-minor-update")
    speed = None if args.max_speed else args.speed
    try:
        cfg = ReplayConfig(bootstrap=args.bootstrap, from_prefix=args.from_prefix, to_prefix=args.to_prefix,
                           range=record_range(args), speed=speed, client=pick_client(args.client),
                           with_weights=not args.no_weights, progress=not args.no_progress)
    except ValueError as e:
        raise CommandError(str(e)) from None
    require_broker(cfg.bootstrap)
    result = replay(cfg)
    print(f"replayed {result.records['impressions']} impressions and {result.records['clicks']} clicks into "
          f"'{cfg.to_prefix}*' in {result.seconds:.2f} s ({result.rate:,.0f} records/s, {cfg.client}); "
          f"{result.weights_copied} model-weights records seeded")
    if result.total == 0:
        raise CommandError("the range holds no impressions or clicks; check --from/--to and the prefix")
    if not args.run_minor_update:
        return 0
    print(f"running minor-update bounded over '{cfg.to_prefix}*' ...", flush=True)
    run_minor_update_bounded(cfg.bootstrap, cfg.to_prefix, job_args)
    cmp = compare_weights(cfg.bootstrap, cfg.from_prefix, cfg.to_prefix, cfg.range, cfg.client)
    if cmp.identical:
        extra = cmp.replayed - cmp.original
        print(f"weights: {cmp.original} MINOR versions reproduced byte for byte"
              + (f" (+{extra} from windows the original had not closed)" if extra else ""))
        return 0
    print(f"weights: {cmp.matched} of {cmp.original} MINOR versions reproduced; {cmp.first_difference}",
          file=sys.stderr)
    return 1


def cmd_export(args: argparse.Namespace) -> int:
    from drnflow.tools.avro_log import export_topic
    from operators.kafka_io import pick_client, require_broker

    require_broker(args.bootstrap)
    try:
        result = export_topic(args.bootstrap, args.prefix, args.topic, record_range(args), args.output,
                              pick_client(args.client))
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"exported {result.records} records of {result.topic} to {result.path}")
    return 0


def cmd_import(args: argparse.Namespace) -> int:
    from drnflow.tools.avro_log import import_file, open_export
    from operators.kafka_io import pick_client, require_broker

    open_export(args.file)  # a wrong file is named before the broker is asked anything
    require_broker(args.bootstrap)
    try:
        result = import_file(args.bootstrap, args.prefix, args.file, pick_client(args.client), args.topic,
                             append=args.append)
    except ValueError as e:
        raise CommandError(str(e)) from None
    print(f"imported {result.records} records from {result.path} into {result.topic}")
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    rp = sub.add_parser(
        "replay", help="re-publish a range of impressions and clicks into a new topic prefix",
        description="Copy a time or offset range of impressions and clicks into topics with a new prefix, with "
                    "their original keys and event times (record timestamps), at xN event-time speed or as fast "
                    "as possible, and seed the new model-weights topic with the versions the original run started "
                    "from. With --run-minor-update, then run the minor-update job bounded over the new topics and "
                    "check it reproduces the original MINOR weight versions byte for byte (exit 1 if not). Job "
                    "flags (--window, --seed, ... as the original run had them) go after `--`.")
    add_kafka_options(rp)
    add_prefix_argument(rp, dest="from_prefix", aliases=("--from-prefix", "--topic-prefix"),
                        help="topic prefix of the logged run (env DRNFLOW_TOPIC_PREFIX; default none)")
    rp.add_argument("--to-prefix", required=True, help="topic prefix to replay into (topics are created)")
    add_range_options(rp)
    pace = rp.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=float, default=None, help="event-time speed-up, e.g. 10 for x10")
    pace.add_argument("--max-speed", action="store_true", help="as fast as possible (the default)")
    rp.add_argument("--no-weights", action="store_true", help="do not seed model-weights from the original")
    rp.add_argument("--no-progress", action="store_true", help="no progress bar")
    rp.add_argument("--run-minor-update", action="store_true",
                    help="then run the minor-update job bounded over the replay and compare weights")
    rp.add_argument("job_args", nargs="*", metavar="-- JOB_FLAGS",
                    help="flags for the minor-update job, after `--`")
    rp.set_defaults(func=cmd_replay)

    from schemas.topics import TOPIC_SCHEMAS

    ex = sub.add_parser("export", help="write a topic range to an Avro container file",
                        description="Write a range of one topic (keys, partitions, timestamps, headers and values) "
                                    "to an Avro object container file that `drnflow import` writes back exactly.")
    ex.add_argument("topic", choices=list(TOPIC_SCHEMAS), help="logical topic name")
    ex.add_argument("-o", "--output", required=True, help="the .avro file to write")
    add_prefix_argument(ex, dest="prefix")
    add_kafka_options(ex)
    add_range_options(ex)
    ex.set_defaults(func=cmd_export)

    im = sub.add_parser("import", help="write an exported Avro file back to a topic",
                        description="Produce the records of a `drnflow export` file to <prefix><topic>, keeping "
                                    "partitions, keys, timestamps, headers and value bytes.")
    im.add_argument("file", help="a file written by `drnflow export`")
    add_prefix_argument(im, dest="prefix")
    im.add_argument("--topic", default=None, help="full target topic name (default: <prefix><exported topic>)")
    im.add_argument("--append", action="store_true",
                    help="import into a topic that already holds records (a second import of one file duplicates "
                         "every record)")
    add_kafka_options(im)
    im.set_defaults(func=cmd_import)
