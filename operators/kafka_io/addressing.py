"""Where the broker and the topics are, said the same way by every command and job.

One vocabulary: `--bootstrap HOST:PORT` and `--prefix PREFIX`. The environment gives the defaults
everywhere (DRNFLOW_BOOTSTRAP, else 127.0.0.1:$DRNFLOW_KAFKA_PORT, else 127.0.0.1:9092; and
DRNFLOW_TOPIC_PREFIX), so a shell that exports them never talks to a broker it did not name. The
spellings of earlier releases (`--topic-prefix`, `--from-prefix`) still parse but are not shown.
"""

from __future__ import annotations

import argparse
import os

ENV_BOOTSTRAP = "DRNFLOW_BOOTSTRAP"
ENV_KAFKA_PORT = "DRNFLOW_KAFKA_PORT"
ENV_TOPIC_PREFIX = "DRNFLOW_TOPIC_PREFIX"
DEFAULT_KAFKA_PORT = 9092

BOOTSTRAP_HELP = (f"Kafka bootstrap servers (env {ENV_BOOTSTRAP}; default 127.0.0.1:${ENV_KAFKA_PORT}, "
                  f"else 127.0.0.1:{DEFAULT_KAFKA_PORT})")
PREFIX_HELP = f"prefix of the topic names (env {ENV_TOPIC_PREFIX}; default none)"


def default_bootstrap() -> str:
    """The broker a command talks to when no --bootstrap is given."""
    explicit = os.environ.get(ENV_BOOTSTRAP, "").strip()
    if explicit:
        return explicit
    port = os.environ.get(ENV_KAFKA_PORT, "").strip() or str(DEFAULT_KAFKA_PORT)
    return f"127.0.0.1:{port}"


def default_prefix() -> str:
    """The topic prefix a command uses when no --prefix is given."""
    return os.environ.get(ENV_TOPIC_PREFIX, "")


def add_bootstrap_argument(parser: argparse.ArgumentParser, default: str | None = "env") -> None:
    """`--bootstrap` into `args.bootstrap`; `default=None` leaves it None (a config's default applies)."""
    resolved = default_bootstrap() if default == "env" else default
    parser.add_argument("--bootstrap", default=resolved, metavar="HOST:PORT",
                        help=BOOTSTRAP_HELP if resolved is None else f"{BOOTSTRAP_HELP[:-1]}; here: %(default)s)")


def add_prefix_argument(parser: argparse.ArgumentParser, dest: str = "topic_prefix", default: str | None = "env",
                        aliases: tuple[str, ...] = ("--topic-prefix",), help: str = PREFIX_HELP) -> None:
    """`--prefix` into `args.<dest>`, with the old spellings `aliases` parsed but hidden from --help."""
    resolved = default_prefix() if default == "env" else default
    shown = f"{help[:-1]}; here: %(default)s)" if resolved and help.endswith(")") else help
    parser.add_argument("--prefix", dest=dest, default=resolved, metavar="PREFIX", help=shown)
    for alias in aliases:
        parser.add_argument(alias, dest=dest, default=argparse.SUPPRESS, help=argparse.SUPPRESS)


def add_kafka_arguments(parser: argparse.ArgumentParser) -> None:
    """`--bootstrap` and `--prefix` (into `args.topic_prefix`), defaults from the environment."""
    add_bootstrap_argument(parser)
    add_prefix_argument(parser)
