"""Start, find and stop the background services drnflow owns, by pid file plus a marker argument.

A pid file alone could point at a recycled pid; every process we start carries
`-Ddrnflow.service=<name>@<state dir>` on its command line, and we only signal a pid whose
/proc cmdline still has it. That is how `drnflow down` stops exactly what `up` started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time
from pathlib import Path

from operators.kafka_io.clients import port_answers as port_answers  # re-exported: its callers import it here


def marker(service: str, state: Path) -> str:
    return f"-Ddrnflow.service={service}@{state}"


#: The environment variable a service's processes carry (`<name>@<state dir>`), inherited by whatever they
#: start: a killed TaskManager's Python workers live on, orphaned, and are found by it.
SERVICE_ENV = "DRNFLOW_SERVICE"


def service_id(service: str, state: Path) -> str:
    return f"{service}@{state}"


def find_in_environment(value: str) -> list[int]:
    """Live pids, other than this one, whose environment has SERVICE_ENV=value (only this user's
    processes' environments can be read, so no one else's process is ever found)."""
    needle = f"{SERVICE_ENV}={value}".encode()
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            environ = (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle in environ.split(b"\0") and alive(int(entry.name)):
            pids.append(int(entry.name))
    return sorted(pids)


#: Command-line marks of the processes PyFlink starts for a TaskManager's Python in process mode (the
#: runner script, then `python -m pyflink.fn_execution.beam.beam_boot` and its worker).
PYTHON_WORKER_MARKS = ("pyflink-udf-runner", "pyflink.fn_execution")


def parent_pid(pid: int) -> int | None:
    """The parent of a live pid, from /proc/<pid>/stat (None once it is gone)."""
    try:
        return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, IndexError, ValueError):
        return None


def ancestors(pid: int) -> list[int]:
    """`pid`'s parent, its parent, ... up to (not including) pid 1."""
    chain: list[int] = []
    parent = parent_pid(pid)
    while parent is not None and parent > 1 and parent not in chain and len(chain) < 64:
        chain.append(parent)
        parent = parent_pid(parent)
    return chain


def orphaned_workers(value: str, owners: list[int]) -> list[int]:
    """Python workers carrying SERVICE_ENV=value that none of `owners` (the service's live daemons) is an
    ancestor of: a killed TaskManager's, re-parented to init (or a subreaper) and running on for ever."""
    owned = set(owners)
    orphans = []
    for pid in find_in_environment(value):
        chain = [pid, *ancestors(pid)]
        if owned.isdisjoint(chain) and any(m in cmdline(p) for p in chain for m in PYTHON_WORKER_MARKS):
            orphans.append(pid)
    return orphans


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def find_marked(mark: str) -> list[int]:
    """All live pids whose command line carries `mark` (also finds ones whose pid file was lost)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and mark in cmdline(int(entry.name)):
            pids.append(int(entry.name))
    return sorted(pids)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def terminate(pids: list[int], timeout_s: float = 30.0) -> None:
    """SIGTERM, wait, then SIGKILL what is left."""
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        _reap()
        time.sleep(0.2)
    for pid in pids:
        if alive(pid):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
    _reap()


def _reap() -> None:
    try:
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                break
    except ChildProcessError:
        pass


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return True
    return False


_handed_out: set[int] = set()


def free_port(host: str = "127.0.0.1") -> int:
    """A port that is free now and that this process has not handed out before.

    The kernel may give the same ephemeral port to two binds in a row once the first is closed, so
    two calls (a broker port and its controller port) could otherwise collide.
    """
    for _ in range(100):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind((host, 0))
            port = int(s.getsockname()[1])
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no fresh free port after 100 tries")


def log_tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"
