"""`drnflow`: one entry point; each subcommand lives in a module of drnflow.commands."""

from __future__ import annotations

import argparse
import importlib
import os
import pkgutil
import sys
from collections.abc import Sequence

from drnflow import __version__, commands
from drnflow.errors import CommandError
from operators.kafka_io.clients import KafkaIOError

__all__ = ["CommandError", "duration_ms_argument", "main", "make_parser"]


def duration_ms_argument(text: str) -> int:
    """argparse `type=` for a Flink-style duration ("30 min", "60s"): milliseconds, or argparse's usage error."""
    from schemas.durations import parse_duration_ms

    try:
        return parse_duration_ms(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="drnflow",
        description="Streaming online learning for RL recommenders (DRN + DBGD, GE re-ranking) "
        "on Apache Kafka and Apache Flink.",
    )
    parser.add_argument("--version", action="version", version=f"drnflow {__version__}")
    parser.add_argument("--config", metavar="PATH",
                        help="settings file (default $DRNFLOW_CONFIG, else ./drnflow.toml if present); flags and "
                             "environment variables override it")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for info in sorted(pkgutil.iter_modules(commands.__path__), key=lambda m: m.name):
        module = importlib.import_module(f"{commands.__name__}.{info.name}")
        register = getattr(module, "register", None)
        if register is not None:
            register(sub)
    _remember_parsers(parser)
    return parser


def _remember_parsers(parser: argparse.ArgumentParser) -> None:
    """Every (sub)command parser stores itself in its namespace, so an unknown flag is reported with the
    usage of the command it was given to, not the top-level usage."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for child in action.choices.values():
                child.set_defaults(_parser=child)
                _remember_parsers(child)


def main(argv: Sequence[str] | None = None) -> int:
    from drnflow import config_file

    try:
        path, argv = config_file.config_path(sys.argv[1:] if argv is None else argv)
        config = config_file.load(path) if path is not None else {}
        if path is not None:
            config_file.apply_environment(config, path)
        parser = make_parser()
        if path is not None:
            config_file.apply_command_defaults(parser, config, path)
    except CommandError as e:
        print(f"drnflow: {e}", file=sys.stderr)
        return e.code
    args, extra = parser.parse_known_args(argv)
    if extra:
        getattr(args, "_parser", parser).error(f"unrecognized arguments: {' '.join(extra)}")
    func = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 2
    try:
        result = func(args)
    except (CommandError, KafkaIOError) as e:  # user-facing: one sentence, no traceback
        print(f"drnflow {args.command}: {e}", file=sys.stderr)
        return e.code
    except KeyboardInterrupt:
        print(f"drnflow {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `drnflow monitor | head`: the reader has gone, which is not an error
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 0
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
