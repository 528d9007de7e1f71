"""What the benchmarks print beside their numbers about the machine they ran on (a shared two-core one)."""

from __future__ import annotations


def loadavg() -> str:
    """The 1, 5 and 15 minute load averages, or "n/a" where /proc has none."""
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "n/a"
