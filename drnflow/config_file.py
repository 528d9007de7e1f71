"""The optional `drnflow.toml`: settings a team keeps in one file instead of every command line.

Precedence, highest first: command-line flags, environment variables, the file, built-in defaults.
Top-level keys stand for the environment variables (so they reach every command, job and subprocess the
same way); a table per command sets that command's flag defaults:

    bootstrap = "127.0.0.1:19092"      # DRNFLOW_BOOTSTRAP
    prefix = "prod."                   # DRNFLOW_TOPIC_PREFIX
    jobmanager = "localhost:18081"     # DRNFLOW_JOBMANAGER

    [simulate]
    impressions = 5000
    click-model = "pbm"

    [model.init]
    alpha = 0.05

The file is `--config PATH` (before the command), else $DRNFLOW_CONFIG, else ./drnflow.toml if present.
"""

from __future__ import annotations

import argparse
import os
import tomllib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from drnflow.errors import CommandError

ENV_CONFIG = "DRNFLOW_CONFIG"
#: top-level key -> the environment variable it stands for.
ENV_KEYS = {
    "bootstrap": "DRNFLOW_BOOTSTRAP",
    "kafka_port": "DRNFLOW_KAFKA_PORT",
    "kafka_controller_port": "DRNFLOW_KAFKA_CONTROLLER_PORT",
    "prefix": "DRNFLOW_TOPIC_PREFIX",
    "jobmanager": "DRNFLOW_JOBMANAGER",
    "flink_rest_port": "DRNFLOW_FLINK_REST_PORT",
    "flink_rpc_port": "DRNFLOW_FLINK_RPC_PORT",
    "state_dir": "DRNFLOW_STATE",
    "cache_dir": "DRNFLOW_CACHE",
}


def config_path(argv: Sequence[str]) -> tuple[Path | None, list[str]]:
    """The config file named by `--config PATH` (removed from argv), $DRNFLOW_CONFIG or ./drnflow.toml."""
    args = list(argv)
    for i, a in enumerate(args):
        if a == "--config" and i + 1 < len(args):
            return Path(args[i + 1]), args[:i] + args[i + 2:]
        if a.startswith("--config="):
            return Path(a.split("=", 1)[1]), args[:i] + args[i + 1:]
        if not a.startswith("-"):
            break  # the command: flags after it are the command's own
    if os.environ.get(ENV_CONFIG):
        return Path(os.environ[ENV_CONFIG]), args
    local = Path("drnflow.toml")
    return (local if local.is_file() else None), args


def load(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as f:
            return tomllib.load(f)
    except FileNotFoundError:
        raise CommandError(f"config file {path} does not exist") from None
    except (OSError, tomllib.TOMLDecodeError) as e:
        raise CommandError(f"config file {path}: {e}") from None


def apply_environment(config: dict[str, Any], path: Path) -> None:
    """Top-level keys become environment variables unless the environment already sets them."""
    for key, value in config.items():
        if isinstance(value, dict):
            continue
        name = ENV_KEYS.get(key.replace("-", "_"))
        if name is None:
            raise CommandError(f"config file {path}: unknown key {key!r}; top-level keys are "
                               f"{', '.join(sorted(ENV_KEYS))}, tables are commands")
        os.environ.setdefault(name, str(value))


def apply_command_defaults(parser: argparse.ArgumentParser, config: dict[str, Any], path: Path) -> None:
    """Each table sets the flag defaults of the command of its name (nested tables: sub-commands)."""
    for name, value in config.items():
        if isinstance(value, dict):
            _apply(parser, [name], value, path)


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _apply(parser: argparse.ArgumentParser, names: list[str], table: dict[str, Any], path: Path) -> None:
    sub = _subparsers(parser).get(names[-1])
    where = ".".join(names)
    if sub is None:
        raise CommandError(f"config file {path}: [{where}] is not a drnflow command")
    by_flag = {opt: a.dest for a in sub._actions for opt in a.option_strings if a.dest != "help"}
    by_dest = {a.dest: a.dest for a in sub._actions if not a.option_strings}  # positionals
    defaults = {}
    for key, value in table.items():
        if isinstance(value, dict):
            _apply(sub, [*names, key], value, path)
            continue
        dest = by_flag.get(f"--{key.replace('_', '-')}") or by_dest.get(key.replace("-", "_"))
        if dest is None:
            raise CommandError(f"config file {path}: [{where}] has no option {key!r}")
        defaults[dest] = value
    sub.set_defaults(**defaults)
