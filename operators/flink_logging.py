"""What drnflow adds to Flink's log4j configuration, for the mini-cluster and the session cluster alike.

Two messages of Flink 2.2 that repeat for as long as a job runs, say nothing new, and bury the rest:

- With watermark alignment on (every unbounded minor-update job), the SourceCoordinator logs one INFO line per
  aligned source every 100 ms ("Distributing maxAllowedWatermark=…"): 20 lines a second, 1.7M a day.
- At every checkpoint each Kafka sink's committer registers its `pendingCommittables` gauge again (its
  CommittableCollector is copied in snapshotState), and the metric group warns of the name collision: a WARN
  per sink per checkpoint, 86k a day at the 2 s interval with two sinks (FLINK-35321, open in 2.2.1). The
  gauge registered first stays and is reported.

A RegexFilter on each logger drops exactly that message; the loggers' other lines stay (the coordinator's
enumerator and reader lines, any other metric's name collision).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from operators.paths import cache_dir

log = logging.getLogger(__name__)

#: The logger whose per-100 ms announcements are dropped.
SOURCE_COORDINATOR = "org.apache.flink.runtime.source.coordinator.SourceCoordinator"
#: The logger of every metric group's name-collision warning.
METRIC_GROUP = "org.apache.flink.metrics.MetricGroup"

#: Marks a properties file that already has drnflow's filters.
MARKER = "# drnflow: drop two lines Flink repeats for as long as a job runs (operators/flink_logging.py)."


def _drop(key: str, logger: str, regex: str, why: str) -> str:
    """A log4j2 logger with a RegexFilter that denies one message. The level follows the root's default, as the
    wheel's files write it. `regex` must match the whole formatted message and hold no backslash (a
    properties file would eat it)."""
    assert "\\" not in regex
    return f"""
# {why}
logger.{key}.name = {logger}
logger.{key}.level = ${{env:ROOT_LOG_LEVEL:-INFO}}
logger.{key}.filter.drop.type = RegexFilter
logger.{key}.filter.drop.regex = {regex}
logger.{key}.filter.drop.onMatch = DENY
logger.{key}.filter.drop.onMismatch = NEUTRAL
"""


#: Appended to a log4j2 properties file.
QUIET_FLINK = "\n" + MARKER + "\n" + _drop(
    "drnflow_alignment", SOURCE_COORDINATOR, "Distributing maxAllowedWatermark.*",
    "The watermark-alignment announcement, every 100 ms per aligned source.",
) + _drop(
    "drnflow_committer_gauge", METRIC_GROUP,
    "Name collision: Group already contains a Metric with the name 'pendingCommittables'[.].*",
    "A sink committer's gauge registered again at every checkpoint (FLINK-35321).",
)


def with_quiet_flink(properties: str) -> str:
    """`properties` (a log4j2 properties file's text) with the filters appended, once."""
    if MARKER in properties:
        return properties
    return properties.rstrip("\n") + "\n" + QUIET_FLINK


def local_flink_conf_dir() -> Path:
    """The conf folder the PyFlink gateway reads: FLINK_CONF_DIR, else the wheel's own."""
    if "FLINK_CONF_DIR" in os.environ:
        return Path(os.environ["FLINK_CONF_DIR"])
    import pyflink

    return Path(pyflink.__file__).resolve().parent / "conf"


def quiet_local_log4j(flink_conf_dir: Path, out_dir: Path) -> Path | None:
    """Point the PyFlink gateway (which runs the mini-cluster) at the wheel's client log4j file plus the
    filter, through the LOG4J_PROPERTIES variable it reads at launch. A user's own LOG4J_PROPERTIES wins;
    returns the file in use, or None when the wheel has none to start from."""
    if "LOG4J_PROPERTIES" in os.environ:
        return Path(os.environ["LOG4J_PROPERTIES"])
    source = flink_conf_dir / "log4j-cli.properties"
    if "PYFLINK_GATEWAY_PORT" in os.environ or not source.exists():
        return None  # under `flink run` the client's JVM is the gateway, already logging its own way
    target = out_dir / "log4j-cli.properties"
    text = with_quiet_flink(source.read_text())
    try:
        if not target.exists() or target.read_text() != text:
            out_dir.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text)
            tmp.replace(target)
    except OSError as e:  # a read-only cache: the job runs, only louder
        log.warning("cannot write %s (%s): Flink's log repeats two lines for as long as a job runs", target, e)
        return None
    os.environ["LOG4J_PROPERTIES"] = str(target)
    return target


def quiet_gateway_log4j() -> Path | None:
    """`quiet_local_log4j` for the gateway this process is about to start, its file in the cache."""
    return quiet_local_log4j(local_flink_conf_dir(), cache_dir() / "flink-log4j")
