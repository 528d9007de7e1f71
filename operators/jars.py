"""Fetch the pinned jars (Kafka broker, Flink connectors) from Maven Central into the cache, once.

The poms in deploy/maven/ pin the versions; a marker file holding the pom's hash makes a second call
a no-op, and a changed pom refetches.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from pathlib import Path

from operators.paths import PROJECT_ROOT, cache_dir

KAFKA_VERSION = "4.1.1"
FLINK_VERSION = "2.2.1"
KAFKA_CONNECTOR_VERSION = "5.0.0-2.2"
MAVEN_DIR = PROJECT_ROOT / "deploy" / "maven"


class SetupError(RuntimeError):
    """A prerequisite is missing or a fetch failed; the message says what to do."""


def require_tool(name: str, purpose: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise SetupError(f"'{name}' is not on PATH; it is needed {purpose} (install it, e.g. apt-get install "
                         f"{'maven' if name == 'mvn' else 'openjdk-17-jre-headless'}).")
    return path


def _fetch(pom: Path, target: Path, extra: list[str]) -> Path:
    digest = hashlib.sha256(pom.read_bytes() + " ".join(extra).encode()).hexdigest()
    marker = target / ".complete"
    if marker.exists() and marker.read_text().strip() == digest:
        return target
    mvn = require_tool("mvn", "to fetch pinned jars from Maven Central")
    if target.exists():
        shutil.rmtree(target)
    target.mkdir(parents=True)
    cmd = [mvn, "-q", "-B", "-f", str(pom), "dependency:copy-dependencies",
           f"-DoutputDirectory={target}", "-DincludeScope=runtime", *extra]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise SetupError(f"Maven could not fetch the jars of {pom.name} (is Maven Central reachable?):\n{tail}")
    marker.write_text(digest)
    return target


def kafka_libs() -> Path:
    """Folder with the Kafka broker's runtime classpath (`java -cp 'DIR/*'`)."""
    return _fetch(MAVEN_DIR / "kafka-broker.pom.xml", cache_dir() / "jars" / f"kafka-{KAFKA_VERSION}", [])


def flink_jars() -> list[Path]:
    """Kafka connector + Avro format jars (and their runtime deps) for PyFlink jobs and the cluster."""
    folder = _fetch(
        MAVEN_DIR / "flink-connectors.pom.xml",
        cache_dir() / "jars" / f"flink-{FLINK_VERSION}",
        ["-DexcludeArtifactIds=slf4j-api,jsr305"],
    )
    return sorted(folder.glob("*.jar"))


def jar_urls(jars: list[Path]) -> list[str]:
    """PyFlink loads jars by file:// URL only."""
    return [p.resolve().as_uri() for p in jars]
