"""Where drnflow keeps downloads (cache) and running services' data (state).

Both default to folders in the project checkout and can be moved with DRNFLOW_CACHE and
DRNFLOW_STATE (or the matching CLI flags), so several checkouts never share a broker by accident.
"""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def cache_dir() -> Path:
    """Downloaded jars, data wheels and sdists: safe to delete, refetched on demand."""
    return Path(os.environ.get("DRNFLOW_CACHE", PROJECT_ROOT / ".cache")).resolve()


def state_dir() -> Path:
    """Broker data, cluster logs, pid files: what `drnflow up` starts lives here."""
    return Path(os.environ.get("DRNFLOW_STATE", PROJECT_ROOT / ".state")).resolve()
