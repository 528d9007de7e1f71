"""Real data that ships inside PyPI packages: fetch the archive once into the cache, read members in place.

The data sets (MovieLens-100K in the recbole wheel, an MSLR-WEB sample in the rankeval sdist) are
never extracted into the repository: members are read straight out of the zip/tar.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from drnflow.paths import cache_dir


class DataUnavailable(RuntimeError):
    """The archive is not cached and could not be downloaded (offline, or the registry refused)."""


@dataclass(frozen=True)
class PackagedData:
    """One pinned registry archive that carries a data set."""

    name: str
    version: str
    sdist: bool

    @property
    def filename(self) -> str:
        if self.sdist:
            return f"{self.name}-{self.version}.tar.gz"
        return f"{self.name}-{self.version}-py3-none-any.whl"


RECBOLE = PackagedData("recbole", "1.2.1", sdist=False)
RANKEVAL = PackagedData("rankeval", "0.8.2", sdist=True)


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


def read_member(archive: Path, member: str) -> bytes:
    """The bytes of one member (path inside the archive, without the sdist's top folder)."""
    if archive.name.endswith(".whl") or archive.suffix == ".zip":
        with zipfile.ZipFile(archive) as zf:
            return zf.read(member)
    with tarfile.open(archive, "r:*") as tf:
        top = archive.name.removesuffix(".tar.gz").removesuffix(".tgz")
        f = tf.extractfile(f"{top}/{member}")
        if f is None:
            raise KeyError(f"{archive.name}: {member} is not a regular file")
        return f.read()
