"""Real data that ships inside PyPI packages: which archive holds it, and reading members in place.

The data sets (MovieLens-100K in the recbole wheel, an MSLR-WEB sample in the rankeval sdist) are
never extracted: members are read straight out of the zip/tar. Fetching the archive is not a model's
job; drnflow/datasets.py does it and passes the path in.
"""

from __future__ import annotations

import tarfile
import zipfile
from dataclasses import dataclass
from pathlib import Path


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
