"""What drnflow adds to Flink's log4j configuration, for the mini-cluster and the session cluster alike.

With watermark alignment on (every unbounded minor-update job), Flink 2.2's SourceCoordinator logs one INFO
line per aligned source every 100 ms ("Distributing maxAllowedWatermark=…"): 20 lines a second, 1.7M a day,
which bury everything else in the JobManager's log and roll it over. A RegexFilter drops those lines only; the
coordinator's other INFO lines (enumerator start, readers registering, checkpoints) stay.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from operators.paths import cache_dir

log = logging.getLogger(__name__)

#: The logger whose per-100 ms announcements are dropped.
SOURCE_COORDINATOR = "org.apache.flink.runtime.source.coordinator.SourceCoordinator"

#: Appended to a log4j2 properties file. The level follows the root's default, as the wheel's files write it.
QUIET_ALIGNMENT = f"""
# drnflow: drop the watermark-alignment announcement the SourceCoordinator logs every 100 ms per source.
logger.drnflow_alignment.name = {SOURCE_COORDINATOR}
logger.drnflow_alignment.level = ${{env:ROOT_LOG_LEVEL:-INFO}}
logger.drnflow_alignment.filter.announce.type = RegexFilter
logger.drnflow_alignment.filter.announce.regex = Distributing maxAllowedWatermark.*
logger.drnflow_alignment.filter.announce.onMatch = DENY
logger.drnflow_alignment.filter.announce.onMismatch = NEUTRAL
"""


def with_quiet_alignment(properties: str) -> str:
    """`properties` (a log4j2 properties file's text) with the filter appended, once."""
    if "logger.drnflow_alignment." in properties:
        return properties
    return properties.rstrip("\n") + "\n" + QUIET_ALIGNMENT


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
    text = with_quiet_alignment(source.read_text())
    try:
        if not target.exists() or target.read_text() != text:
            out_dir.mkdir(parents=True, exist_ok=True)
            tmp = target.with_suffix(f".tmp{os.getpid()}")
            tmp.write_text(text)
            tmp.replace(target)
    except OSError as e:  # a read-only cache: the job runs, only louder
        log.warning("cannot write %s (%s): Flink logs watermark alignment every 100 ms", target, e)
        return None
    os.environ["LOG4J_PROPERTIES"] = str(target)
    return target


def quiet_gateway_log4j() -> Path | None:
    """`quiet_local_log4j` for the gateway this process is about to start, its file in the cache."""
    return quiet_local_log4j(local_flink_conf_dir(), cache_dir() / "flink-log4j")
