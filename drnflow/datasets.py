"""The data sets the simulator and oltr-sim read, fetched into the cache on first use.

Models take an archive path or a cache folder; this module is where those are looked up (DRNFLOW_CACHE)
and where an archive is downloaded with pip (the data ships inside pinned PyPI packages).
"""

from __future__ import annotations

import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

from models.simulator.packaged_data import RANKEVAL, RECBOLE, DataUnavailable, PackagedData
from operators.paths import cache_dir

if TYPE_CHECKING:
    from models.oltr.letor import Query
    from models.simulator.movielens import MovieLens
    from models.simulator.world import World, WorldConfig


def data_dir() -> Path:
    return cache_dir() / "data"


def ensure_archive(pkg: PackagedData, directory: Path | None = None) -> Path:
    """The cached archive of `pkg`, downloaded with pip on first use (idempotent)."""
    directory = directory or data_dir()
    path = directory / pkg.filename
    if path.is_file():
        return path
    directory.mkdir(parents=True, exist_ok=True)
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--disable-pip-version-check",
           "-d", str(directory), f"{pkg.name}=={pkg.version}"]
    if pkg.sdist:
        # Only this package from source: `:all:` would also force its build backend's deps to build.
        cmd[5:5] = ["--no-binary", pkg.name]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if proc.returncode != 0 or not path.is_file():
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
        raise DataUnavailable(
            f"could not download {pkg.name}=={pkg.version} into {directory} (offline? pip said: {tail[0]}); "
            f"put {pkg.filename} there by hand to use it"
        )
    return path


def mf_cache_dir() -> Path:
    """Where fitted matrix factorisations of the simulator's world are cached."""
    return cache_dir() / "simulator"


@lru_cache(maxsize=1)
def movielens() -> MovieLens:
    """MovieLens-100K from the cached recbole wheel (downloaded on first use)."""
    from models.simulator.movielens import parse

    return parse(ensure_archive(RECBOLE))


@lru_cache(maxsize=2)
def mslr_sample(split: str) -> tuple[Query, ...]:
    """The MSLR-WEB fold-1 sample ('train' or 'test') of rankeval 0.8.2 (downloaded on first use)."""
    from models.oltr.letor import MSLR_SAMPLE, mslr_sample_from

    if split not in MSLR_SAMPLE:
        raise ValueError(f"split must be one of {sorted(MSLR_SAMPLE)}, got {split!r}")
    return mslr_sample_from(ensure_archive(RANKEVAL), split)


def world(config: WorldConfig | None = None) -> World:
    """The simulator's world over the real MovieLens, its fitted models cached under the cache dir."""
    from models.simulator.world import World

    return World.build(config, movielens(), mf_cache=mf_cache_dir())


__all__ = ["RANKEVAL", "RECBOLE", "DataUnavailable", "data_dir", "ensure_archive", "movielens", "mslr_sample", "world"]
