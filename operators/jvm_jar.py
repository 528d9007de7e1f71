"""Build drnflow-jvm.jar (operators/jvm: the minor-update job's JVM operators) into the cache, once.

The jar's name carries a hash of the Maven project (pom + sources), so a second call with unchanged
sources is a no-op and a changed source builds a new jar. Maven runs offline first (the usual case
once the Flink jars are in ~/.m2) and online only if that fails.
"""

from __future__ import annotations

import fcntl
import hashlib
import shutil
import subprocess
from pathlib import Path

from operators.jars import SetupError, require_tool
from operators.paths import PROJECT_ROOT, cache_dir

JVM_PROJECT = PROJECT_ROOT / "operators" / "jvm"


def source_digest(project: Path = JVM_PROJECT) -> str:
    """sha256 over the pom and every file under src/, by relative path, so any edit changes it."""
    h = hashlib.sha256()
    files = [project / "pom.xml", *sorted(p for p in (project / "src").rglob("*") if p.is_file())]
    for path in files:
        h.update(str(path.relative_to(project)).encode() + b"\0")
        h.update(path.read_bytes() + b"\0")
    return h.hexdigest()


def jvm_jar(project: Path = JVM_PROJECT) -> Path:
    """Path of drnflow-jvm.jar for the current sources, building it with Maven if needed."""
    digest = source_digest(project)[:16]
    out_dir = cache_dir() / "jars"
    jar = out_dir / f"drnflow-jvm-{digest}.jar"
    if jar.exists():
        return jar
    out_dir.mkdir(parents=True, exist_ok=True)
    with open(out_dir / ".drnflow-jvm.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # pytest and a bench may build at once
        if jar.exists():
            return jar
        mvn = require_tool("mvn", "to build operators/jvm (drnflow-jvm.jar)")
        base = [mvn, "-q", "-B", "-f", str(project / "pom.xml"), "package"]
        proc = subprocess.run([*base[:3], "-o", *base[3:]], capture_output=True, text=True)
        if proc.returncode != 0:
            proc = subprocess.run(base, capture_output=True, text=True)
        if proc.returncode != 0:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise SetupError(f"Maven could not build {project} (drnflow-jvm.jar):\n{tail}")
        built = project / "target" / "drnflow-jvm.jar"
        tmp = jar.with_suffix(".tmp")
        shutil.copyfile(built, tmp)
        tmp.replace(jar)
        # Jars of other sources stay: another checkout (a worktree, a second clone) sharing this cache may be
        # running a job from one, and deleting it under that job fails the job's next start.
    return jar
