"""`drnflow loadgen`: write logged impressions and clicks to a new prefix at a set rate, lap after lap (soak tests)."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from drnflow.commands.replay import add_kafka_options, add_range_options, record_range
from drnflow.errors import CommandError
from operators.kafka_io.addressing import add_prefix_argument


def _stop_on_sigterm() -> None:
    """SIGTERM ends the run as Ctrl-C does: what was sent is flushed and the summary printed."""
    def stop(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, stop)


def cmd_loadgen(args: argparse.Namespace) -> int:
    from drnflow.tools.loadgen import LoadgenConfig, loadgen
    from operators.kafka_io import pick_client, require_broker
    from schemas.topics import TopicNames

    try:
        cfg = LoadgenConfig(bootstrap=args.bootstrap, from_prefix=args.from_prefix, to_prefix=args.to_prefix,
                            range=record_range(args), rate=args.rate, laps=args.laps or None,
                            duration_s=args.duration, client=pick_client(args.client),
                            with_weights=not args.no_weights, continue_run=args.continue_run,
                            progress=not args.no_progress)
    except ValueError as e:
        raise CommandError(str(e)) from None
    if cfg.laps is None and cfg.duration_s is None:
        print("writing until stopped (Ctrl-C or SIGTERM ends it and prints what was written)", flush=True)
    require_broker(cfg.bootstrap)
    _stop_on_sigterm()
    r = loadgen(cfg)
    target = f"{cfg.rate:,.0f} events/s" if cfg.rate is not None else "as fast as possible"
    kept_up = "" if cfg.rate is None else (
        "; kept to the rate" if r.behind_s < 1.0 else
        f"; fell up to {r.behind_s:.1f} s behind the rate (the writer, the broker or the machine is the limit)")
    dst = TopicNames(cfg.to_prefix)
    laps = (f"lap {r.first_lap}" if r.laps_done == 1 else f"laps {r.first_lap}-{r.first_lap + r.laps_done - 1}"
            ) if r.laps_done else "no whole lap"
    print(f"wrote {r.records['impressions']:,} impressions and {r.records['clicks']:,} clicks to "
          f"{dst.impressions}/{dst.clicks} in {r.seconds:.1f} s: {laps}"
          f"{f' (stopped: {r.stopped})' if r.stopped else ''}, {r.rate:,.0f} events/s (target {target}){kept_up}; "
          f"{r.weights_copied} model-weights records seeded"
          + (f"; {r.passed_through:,} records without a request_id/event_time written as they were"
             if r.passed_through else ""))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "loadgen", help="write logged impressions and clicks to a new prefix at a set rate, lap after lap",
        description="Soak-test load: read a range of impressions and clicks logged under --prefix (e.g. by "
                    "`drnflow simulate --as-fast-as-possible`) into memory once, then write it to --to-prefix at "
                    "--rate events/s (impressions + clicks), lap after lap. Lap k >= 1 moves every event time on "
                    "by k lap spans (the range's span, rounded up to a whole minute) and appends ~k to each "
                    "request id, so the job sees new requests and new windows; the bytes are rewritten, never "
                    "decoded. The new model-weights topic is seeded with the versions the range started from. "
                    "Impressions keep the model versions they were logged with: a job whose model has moved on "
                    "counts later laps against older versions (STALE rows once it is more than --max-staleness "
                    "versions ahead): load, not learning.")
    add_kafka_options(p)
    add_prefix_argument(p, dest="from_prefix", aliases=("--from-prefix", "--topic-prefix"),
                        help="topic prefix of the logged traffic (env DRNFLOW_TOPIC_PREFIX; default none)")
    p.add_argument("--to-prefix", required=True, help="topic prefix to write the load into (topics are created)")
    add_range_options(p)
    p.add_argument("--rate", type=float, default=None, metavar="EVENTS_PER_S",
                   help="impressions + clicks per second of wall time (default: as fast as possible)")
    p.add_argument("--laps", type=int, default=1,
                   help="times to write the range; 0: until stopped or --duration (default %(default)s)")
    p.add_argument("--duration", type=float, default=None, metavar="SECONDS",
                   help="stop after this many seconds, whatever lap it is in")
    p.add_argument("--no-weights", action="store_true", help="do not seed model-weights from the logged prefix")
    p.add_argument("--continue", dest="continue_run", action="store_true",
                   help="write into topics that hold records already (a soak going on after a pause, as simulate "
                        "--continue): start with the first lap whose event times come after the newest event "
                        "there; seeds no weights")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_loadgen)
