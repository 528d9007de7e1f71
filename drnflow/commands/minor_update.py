"""`drnflow minor-update`: run the minor-update Flink job (design.md §4-§5) on a local mini-cluster."""

from __future__ import annotations

import argparse
import time

from jobs.minor_update_config import add_arguments, from_args


def cmd_minor_update(args: argparse.Namespace) -> int:
    from drnflow.cli import CommandError

    try:
        cfg = from_args(args)
    except ValueError as e:
        raise CommandError(str(e), code=2) from None
    from jobs.minor_update import run_with
    from operators.model_weights_log import read_weights_log

    try:
        weights_log = read_weights_log(cfg.bootstrap, cfg.topics.model_weights)
    except (ValueError, TimeoutError) as e:
        raise CommandError(str(e)) from None
    except Exception as e:  # kafka-python: NoBrokersAvailable and friends
        raise CommandError(f"cannot read {cfg.topics.model_weights} from {cfg.bootstrap}: {e!r}; "
                           "is the broker up (`drnflow up`)?") from None
    from drnflow.tools.topic_summary import committed_since, end_offsets

    names = cfg.topics
    outputs = [names.win_rates, names.model_weights, names.major_update_triggers, names.dead_letters]
    before = end_offsets(cfg.bootstrap, outputs)
    mode = "reads what the topics hold now, then stops" if cfg.bounded else "runs until Ctrl-C"
    print(f"minor-update: local mini-cluster, topics '{names.prefix}*' on {cfg.bootstrap}; {mode}", flush=True)
    print(f"minor-update: {cfg.describe()}", flush=True)
    t0 = time.monotonic()
    try:
        run_with(cfg, weights_log)
    except ValueError as e:  # explore parameters that disagree with the served version: nothing started
        raise CommandError(str(e), code=2) from None
    written = committed_since(cfg.bootstrap, before)
    print(f"minor-update: done in {time.monotonic() - t0:.1f} s; wrote "
          + ", ".join(f"{written[t]} records to {t}" for t in outputs))
    return 0


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser(
        "minor-update", help="run the minor-update Flink job (attribution, win-rates, DBGD)",
        description="Attribute clicks to impressions, count per-window win-rates and run one DBGD update "
                    "per window and model, publishing WinRate, MINOR ModelWeights and major-update triggers "
                    "exactly once. With --bounded it reads what is in the topics now and stops.")
    add_arguments(p)
    p.set_defaults(func=cmd_minor_update)
