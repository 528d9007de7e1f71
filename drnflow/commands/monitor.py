"""`drnflow monitor`: per model, the last windows' win-rates, decisions, version lineage and lag."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from drnflow.errors import CommandError
from operators.kafka_io.addressing import add_bootstrap_argument, add_prefix_argument


def cmd_monitor(args: argparse.Namespace) -> int:
    from drnflow.tools.monitor import build_views, format_table, to_json
    from drnflow.tools.monitor_io import TopicFollower, newest_event_time, plot
    from operators.kafka_io import require_broker, require_topics
    from schemas.topics import TopicNames

    if args.windows < 1:
        raise CommandError(f"--windows must be >= 1, got {args.windows}")
    if args.interval <= 0:
        raise CommandError(f"--interval must be > 0, got {args.interval}")
    if args.plot and not args.plot.endswith((".png", ".html")):
        raise CommandError(f"--plot {args.plot}: the file must end in .png or .html")
    try:
        names = TopicNames(args.prefix)
    except ValueError as e:
        raise CommandError(str(e)) from None
    require_broker(args.bootstrap)
    require_topics(args.bootstrap, [names.win_rates, names.model_weights, names.impressions])
    rates = TopicFollower(args.bootstrap, names.win_rates, "WinRate")
    weights = TopicFollower(args.bootstrap, names.model_weights, "ModelWeights")
    all_rates: list[dict[str, Any]] = []
    all_weights: list[dict[str, Any]] = []
    newest: int | None = None
    try:
        while True:
            all_rates += rates.catch_up()
            all_weights += weights.catch_up()
            try:
                newest = newest_event_time(args.bootstrap, names.impressions)
            except TimeoutError as e:  # a slow broker: the last answer stands until the next refresh
                print(f"monitor: newest impression time not read this refresh ({e})", file=sys.stderr)
            views = build_views(all_rates, all_weights, newest, last_windows=args.windows)
            if args.json:
                print(json.dumps(to_json(views, newest), indent=None if not args.once else 2), flush=True)
            else:
                if not args.once and sys.stdout.isatty():
                    print("\033[2J\033[H", end="")
                print(f"drnflow monitor: topics '{names.prefix}*' on {args.bootstrap}, "
                      f"{time.strftime('%H:%M:%S')}\n")
                print(format_table(views, newest), flush=True)
            if args.plot:
                plot(all_rates, all_weights, args.plot)
            if args.once:
                return 0
            time.sleep(args.interval)
    finally:
        rates.close()
        weights.close()


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "monitor", help="follow win-rates and model-weights: per model windows, decisions, lineage, lag",
        description="Follow the win-rates and model-weights topics and show, per model, the last windows "
                    "(impressions, explore and current wins, win-rate with a 95% Wilson interval on "
                    "explore/(explore+current), decision), the version lineage, and the lag of the last "
                    "finished window behind the newest impression.")
    add_bootstrap_argument(p)
    add_prefix_argument(p, dest="prefix")
    p.add_argument("--windows", type=int, default=5, help="how many recent windows per model (default 5)")
    p.add_argument("--interval", type=float, default=5.0, help="seconds between refreshes (default 5)")
    p.add_argument("--once", action="store_true", help="print once and exit")
    p.add_argument("--json", action="store_true", help="JSON instead of a table (one object per refresh)")
    p.add_argument("--plot", default=None, metavar="FILE.png|FILE.html",
                   help="also draw win-rate and accepted updates over time into this file (at every refresh)")
    p.set_defaults(func=cmd_monitor)
