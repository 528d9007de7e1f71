"""`drnflow demo`: run drnflow end to end on a private stack, then stop everything it started."""

from __future__ import annotations

import argparse
from pathlib import Path

from drnflow.paths import state_dir


def cmd_demo(args: argparse.Namespace) -> int:
    state = (args.state_dir or state_dir() / "demo").resolve()
    from drnflow.demo.smoke import run_smoke_demo

    return run_smoke_demo(state, seed=args.seed)


def register(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg,unused-ignore]
    p = sub.add_parser("demo", help="run the main job end to end on a private stack",
                       description="Start a private Kafka broker, produce data, run the Flink job, print the "
                                   "result, and stop everything it started.")
    p.add_argument("--state-dir", type=Path, default=None,
                   help="where the demo's broker lives (default: <state>/demo; wiped at start)")
    p.add_argument("--seed", type=int, default=7, help="seed of the generated data")
    p.set_defaults(func=cmd_demo)
