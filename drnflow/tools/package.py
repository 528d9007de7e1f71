"""`drnflow package`: one folder holding everything a remote Flink cluster needs to run drnflow's jobs.

A cluster on another machine has none of this checkout: not its code, not its venv, not its jar cache.
The package carries them, and `drnflow submit --package DIR` ships them with the standard `flink run`
options, so no path of the submitting machine is needed on the cluster:

- `job.zip`: the project's Python packages and the build files the job's client side hashes (`-pyfs`);
- `python-env.tar.gz`: a virtual environment with the job's runtime dependencies, packed by venv-pack
  (`-pyarch ...#drnflow-env`, `-pyexec drnflow-env/bin/python`). venv-pack keeps the base interpreter
  out of the archive: the cluster needs a Python of the same version at `--python-prefix` (this
  machine's base prefix by default; `/usr/local` in deploy/k8s/Dockerfile's image);
- `cache/`: the connector jars and drnflow-jvm.jar in the cache's layout, for the job's client side,
  which adds them to the job (`pipeline.jars`), so the cluster receives them with the job graph;
- `manifest.json`: what was packed, with versions, sizes and sha256 digests.

The Python environment leaves out torch by default: the minor-update job's per-window DBGD step is numpy
only, and torch is ~3 GB with its CUDA libraries. A PDGD job, or a model with no first version (its
initial network is built with torch), needs `--with-torch`.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import tempfile
import time
import venv
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from drnflow import __version__
from drnflow.errors import CommandError

#: What the job's Python needs on the cluster (pinned to the versions installed here when packing).
RUNTIME_REQUIREMENTS = ("apache-flink", "kafka-python", "confluent-kafka", "fastavro", "numpy")
#: The jars inside the pyflink package are the client's and the cluster's JVM side; the cluster's
#: Python workers never read them (~310 MB of the ~850 MB environment).
ENV_EXCLUDES = (
    "lib/python*/site-packages/pandas/tests/*",
    "lib/python*/site-packages/pyflink/lib/*",
    "lib/python*/site-packages/pyflink/opt/*",
    "lib/python*/site-packages/pyflink/plugins/*",
    "lib/python*/site-packages/pyflink/examples/*",
    "*/__pycache__/*",
)
JOB_ZIP = "job.zip"
PYTHON_ENV_ZIP = "python-env.tar.gz"
#: The name the archive is unpacked under on the cluster, relative to the task's working directory.
ENV_NAME = "drnflow-env"
MANIFEST = "manifest.json"
#: PyFlink's execution mode of a packaged job. Thread mode embeds Python in the TaskManager with PYTHONHOME set
#: to the unpacked archive, which only works for an archive holding a whole Python distribution (stdlib
#: included); a venv runs as the interpreter of Python worker processes.
PACKAGE_PYTHON_MODE = "process"


@dataclass(frozen=True)
class PackageConfig:
    out: Path
    #: Prefix of the base interpreter on the cluster (venv-pack --python-prefix); None: this one's.
    python_prefix: str | None = None
    with_torch: bool = False
    #: pip's extra options (e.g. --no-index --find-links WHEELHOUSE for a machine without an index).
    pip_args: tuple[str, ...] = ()
    force: bool = False


@dataclass(frozen=True)
class Package:
    """A built package folder, as `submit --package` reads it."""

    root: Path
    manifest: dict[str, object] = field(default_factory=dict)

    @property
    def job_zip(self) -> Path:
        return self.root / JOB_ZIP

    @property
    def python_env(self) -> Path:
        return self.root / PYTHON_ENV_ZIP

    @property
    def cache(self) -> Path:
        return self.root / "cache"

    @property
    def python_exec(self) -> str:
        """The cluster-side interpreter: relative to where Flink unpacks the archive."""
        return f"{ENV_NAME}/bin/python"


def requirements(with_torch: bool) -> list[str]:
    """RUNTIME_REQUIREMENTS (plus torch) pinned to this environment's versions, so the cluster runs what
    was tested here."""
    names = [*RUNTIME_REQUIREMENTS, *(("torch",) if with_torch else ())]
    pins = []
    for name in names:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            raise CommandError(f"{name} is not installed in this environment ({sys.prefix}); install the "
                               "project first (`make setup`)") from None
    return pins


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _run(cmd: list[str], what: str) -> None:
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
        raise CommandError(f"{what} failed ({' '.join(cmd[:4])} ...):\n{tail}")


def _copy_jars(cache: Path) -> list[Path]:
    """The connector jars (with their completeness marker) and drnflow-jvm.jar, in the cache's layout."""
    from operators.jars import flink_jars
    from operators.jvm_jar import jvm_jar

    connectors = flink_jars()
    folder = connectors[0].parent
    target = cache / "jars" / folder.name
    target.mkdir(parents=True, exist_ok=True)
    for jar in [*connectors, folder / ".complete"]:
        shutil.copy2(jar, target / jar.name)
    jvm = jvm_jar()
    shutil.copy2(jvm, cache / "jars" / jvm.name)
    return [*(target / j.name for j in connectors), cache / "jars" / jvm.name]


def _python_env(dest: Path, cfg: PackageConfig, pins: list[str], say: Callable[[str], None]) -> None:
    """A fresh venv of the base interpreter with `pins` installed, packed by venv-pack into `dest`."""
    with tempfile.TemporaryDirectory(prefix="drnflow-package-") as tmp:
        env_dir = Path(tmp) / ENV_NAME
        venv.EnvBuilder(with_pip=True, symlinks=True).create(env_dir)
        python = env_dir / "bin" / "python"
        say(f"      pip install {' '.join(pins)}")
        _run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", *cfg.pip_args, *pins],
             "installing the job's dependencies into the packed environment")
        _run([str(python), "-c", "import pyflink.fn_execution, numpy, fastavro, kafka, confluent_kafka"],
             "importing the packed environment's modules")
        cmd = [sys.executable, "-m", "venv_pack", "--prefix", str(env_dir), "--output", str(dest), "--format", "tar.gz",
               "--compress-level", "1", "--quiet", "--force"]
        if cfg.python_prefix:
            cmd += ["--python-prefix", cfg.python_prefix]
        for pattern in ENV_EXCLUDES:
            cmd += ["--exclude", pattern]
        lib64 = env_dir / "lib64"
        if lib64.is_symlink():  # a link to lib/ that venv-pack would pack as a second copy of every package
            lib64.unlink()
        _run(cmd, "venv-pack")


def build(cfg: PackageConfig, say: Callable[[str], None] = print) -> Package:
    """Build the package folder `cfg.out` (refusing to overwrite one unless `force`)."""
    from drnflow.tools.flink_jobs import package_project

    try:
        import venv_pack  # noqa: F401
    except ImportError:
        raise CommandError("venv-pack is not installed in this environment; `make setup` installs it") from None
    out = cfg.out.resolve()
    if out.exists():
        if not cfg.force:
            raise CommandError(f"{out} exists; pass --force to replace it")
        shutil.rmtree(out)
    out.mkdir(parents=True)
    t_all = time.monotonic()
    timings: dict[str, float] = {}

    t0 = time.monotonic()
    job = package_project(out)
    if job.name != JOB_ZIP:
        job = job.replace(out / JOB_ZIP)
    timings["job_code_s"] = time.monotonic() - t0
    say(f"[1/3] job code       {JOB_ZIP} ({job.stat().st_size / 1e6:.1f} MB) in {timings['job_code_s']:.1f} s")

    t0 = time.monotonic()
    jars = _copy_jars(out / "cache")
    timings["jars_s"] = time.monotonic() - t0
    say(f"[2/3] jars           {len(jars)} jars into cache/ ({sum(j.stat().st_size for j in jars) / 1e6:.1f} MB) "
        f"in {timings['jars_s']:.1f} s")

    pins = requirements(cfg.with_torch)
    t0 = time.monotonic()
    say(f"[3/3] python env     building {PYTHON_ENV_ZIP}{' with torch (large)' if cfg.with_torch else ''} ...")
    _python_env(out / PYTHON_ENV_ZIP, cfg, pins, say)
    timings["python_env_s"] = time.monotonic() - t0
    env_size = (out / PYTHON_ENV_ZIP).stat().st_size
    say(f"      {PYTHON_ENV_ZIP} ({env_size / 1e6:.0f} MB) in {timings['python_env_s']:.1f} s")

    files = sorted(p for p in out.rglob("*") if p.is_file())
    manifest: dict[str, object] = {
        "drnflow_version": __version__,
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "python_version": ".".join(map(str, sys.version_info[:3])),
        "python_prefix": cfg.python_prefix or sys.base_prefix,
        "python_exec": f"{ENV_NAME}/bin/python",
        "requirements": pins,
        "with_torch": cfg.with_torch,
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "files": {p.relative_to(out).as_posix(): {"bytes": p.stat().st_size, "sha256": _sha256(p)} for p in files},
    }
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
    total = sum(p.stat().st_size for p in files)
    say(f"package {out} ({total / 1e6:.0f} MB) built in {time.monotonic() - t_all:.1f} s; "
        f"the cluster needs Python {manifest['python_version']} at {manifest['python_prefix']}")
    return Package(out, manifest)


def load(root: Path) -> Package:
    """A package folder checked complete against its manifest's file list (sizes only: quick)."""
    root = root.resolve()
    try:
        manifest = json.loads((root / MANIFEST).read_text())
    except (OSError, ValueError) as e:
        raise CommandError(f"{root} is not a drnflow package (no readable {MANIFEST}: {e}); build one with "
                           "`drnflow package --out DIR`") from None
    files = manifest.get("files", {})
    for rel, info in files.items():
        path = root / rel
        if not path.is_file() or path.stat().st_size != info.get("bytes"):
            raise CommandError(f"package {root} is incomplete or changed: {rel} is missing or has another size")
    pkg = Package(root, manifest)
    for needed in (pkg.job_zip, pkg.python_env):
        if not needed.is_file():
            raise CommandError(f"package {root} has no {needed.name}")
    return pkg
