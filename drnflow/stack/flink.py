"""A Flink standalone session cluster (one JobManager, one TaskManager) from the apache-flink wheel.

The wheel's own scripts start it; drnflow gives them a private conf, lib, log and pid folder under
`<state>/flink/` so the wheel is never modified and `down` stops exactly this cluster.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from drnflow.stack import process
from operators.flink_logging import with_quiet_flink
from operators.jars import SetupError, flink_jars, require_tool
from operators.paths import PROJECT_ROOT

SERVICE = "flink"
#: The reporter ports of deploy/flink/metrics-prometheus.yaml: each process takes the first free one.
PROMETHEUS_PORTS = "9249-9259"
_PORT_SPEC = re.compile(r"^\d+(-\d+)?(,\d+(-\d+)?)*$")


def flink_home() -> Path:
    """FLINK_HOME is the pyflink package folder of the installed wheel."""
    import pyflink

    return Path(pyflink.__file__).resolve().parent


def flink_cli() -> Path:
    return flink_home() / "bin" / "flink"


@dataclass(frozen=True)
class FlinkClusterConfig:
    state_dir: Path
    rest_port: int = 8081
    rpc_port: int = 6123
    task_slots: int = 2
    #: TaskManagers `start` starts (each with `task_slots` slots): >1 spreads a job over processes.
    taskmanagers: int = 1
    jobmanager_memory: str = "1024m"
    taskmanager_memory: str = "2048m"
    startup_timeout_s: float = 120.0
    #: Append deploy/flink/metrics-prometheus.yaml: every metric on a Prometheus endpoint.
    prometheus: bool = False
    #: The reporter's ports, as Flink's `metrics.reporter.prom.port` takes them ("9249-9259", "9301,9302"):
    #: the JobManager and every TaskManager each bind the first one still free.
    prometheus_ports: str = PROMETHEUS_PORTS

    def __post_init__(self) -> None:
        for name in ("rest_port", "rpc_port"):
            value = getattr(self, name)
            if not 1 <= value <= 65535:
                raise ValueError(f"{name} must be a TCP port (1-65535), got {value}")
        if self.rest_port == self.rpc_port:
            raise ValueError(f"rest_port and rpc_port must differ, both are {self.rest_port}")
        if not 1 <= self.task_slots <= 64:
            raise ValueError(f"task_slots must be in 1..64, got {self.task_slots}")
        if not 1 <= self.taskmanagers <= 16:
            raise ValueError(f"taskmanagers must be in 1..16, got {self.taskmanagers}")
        prometheus_ports(self.prometheus_ports)

    @property
    def jobmanager(self) -> str:
        return f"localhost:{self.rest_port}"

    @property
    def web_ui(self) -> str:
        return f"http://localhost:{self.rest_port}"


@dataclass(frozen=True)
class ClusterStatus:
    running: bool
    pids: list[int]
    jobmanager: str | None
    web_ui: str | None
    taskmanagers: int
    home: Path


@dataclass(frozen=True)
class Healed:
    """What `FlinkCluster.heal` found and did."""

    alive: int  # TaskManagers running before
    started: int
    orphans_ended: int  # Python workers of dead TaskManagers


class FlinkCluster:
    def __init__(self, config: FlinkClusterConfig) -> None:
        self.config = config
        self.home = config.state_dir / "flink"
        self.conf_dir = self.home / "conf"
        self.lib_dir = self.home / "lib"
        self.log_dir = self.home / "log"
        self.pid_dir = self.home / "pid"
        self.info_file = self.home / "cluster.json"
        self.mark = process.marker(SERVICE, config.state_dir.resolve())
        self.service_id = process.service_id(SERVICE, config.state_dir.resolve())

    def env(self) -> dict[str, str]:
        """Environment for the wheel's scripts (also for `flink run` against this cluster)."""
        env = dict(os.environ)
        env.update({
            "FLINK_CONF_DIR": str(self.conf_dir),
            "FLINK_LIB_DIR": str(self.lib_dir),
            "FLINK_LOG_DIR": str(self.log_dir),
            "FLINK_PID_DIR": str(self.pid_dir),
            "FLINK_IDENT_STRING": "drnflow",
            process.SERVICE_ENV: self.service_id,
        })
        return env

    def pids(self) -> list[int]:
        return process.find_marked(self.mark)

    def status(self) -> ClusterStatus:
        pids = self.pids()
        info = self._info()
        if not pids:
            return ClusterStatus(False, [], None, None, 0, self.home)
        rest = int(info.get("rest_port", self.config.rest_port))
        overview = rest_get(f"http://localhost:{rest}/overview")
        tms = _int(overview.get("taskmanagers", 0)) if overview else 0
        return ClusterStatus(True, pids, f"localhost:{rest}", f"http://localhost:{rest}", tms, self.home)

    def _info(self) -> dict[str, int]:
        try:
            data: dict[str, int] = json.loads(self.info_file.read_text())
            return data
        except (OSError, ValueError):
            return {}

    def start(self, extra_jars: list[Path] | None = None) -> ClusterStatus:
        current = self.status()
        if current.running:
            return current
        require_tool("java", "to run the Flink cluster")
        cfg = self.config
        for port in (cfg.rest_port, cfg.rpc_port):
            if process.port_in_use("127.0.0.1", port):
                raise SetupError(f"port {port} on localhost is already in use by another process; choose "
                                 f"another with --rest-port/--rpc-port (or DRNFLOW_FLINK_REST_PORT).")
        # flink-python (from the wheel's opt/) in lib/ so PyFlink jobs share one pemja per TaskManager.
        python_jars = sorted((flink_home() / "opt").glob("flink-python-*.jar"))
        self._prepare(sorted({*flink_jars(), *python_jars, *(extra_jars or [])}))
        env = self.env()
        bin_dir = flink_home() / "bin"
        for script in ("jobmanager.sh", "taskmanager.sh"):
            proc = subprocess.run(["bash", str(bin_dir / script), "start"], env=env, capture_output=True,
                                  text=True)
            if proc.returncode != 0:
                raise SetupError(f"{script} start failed: {(proc.stdout + proc.stderr).strip()[-600:]}")
        self.info_file.write_text(json.dumps({"rest_port": cfg.rest_port, "rpc_port": cfg.rpc_port,
                                              "taskmanagers": cfg.taskmanagers}))
        self._wait_ready()
        for _ in range(cfg.taskmanagers - 1):
            self.start_taskmanager()
        return self.status()

    def _prepare(self, jars: list[Path]) -> None:
        for d in (self.conf_dir, self.log_dir, self.pid_dir, self.home / "checkpoints", self.home / "savepoints"):
            d.mkdir(parents=True, exist_ok=True)
        if self.lib_dir.exists():
            shutil.rmtree(self.lib_dir)
        self.lib_dir.mkdir(parents=True)
        for jar in [*sorted((flink_home() / "lib").glob("*.jar")), *jars]:
            (self.lib_dir / jar.name).symlink_to(jar.resolve())
        wheel_conf = flink_home() / "conf"
        for name in ("log4j.properties", "log4j-console.properties", "log4j-cli.properties",
                     "log4j-session.properties", "logback.xml"):
            if (wheel_conf / name).exists():
                text = (wheel_conf / name).read_text()
                (self.conf_dir / name).write_text(with_quiet_flink(text) if name.endswith(".properties") else text)
        (self.conf_dir / "config.yaml").write_text(self._config_yaml())
        (self.conf_dir / "masters").write_text(f"localhost:{self.config.rest_port}\n")
        (self.conf_dir / "workers").write_text("localhost\n")

    def _config_yaml(self) -> str:
        cfg = self.config
        java_opts = _wheel_java_opts()
        settings: dict[str, str | int] = {
            "env.java.opts.all": f"{java_opts} {self.mark}".strip(),
            "jobmanager.rpc.address": "localhost",
            "jobmanager.rpc.port": cfg.rpc_port,
            "jobmanager.bind-host": "localhost",
            "jobmanager.memory.process.size": cfg.jobmanager_memory,
            "taskmanager.bind-host": "localhost",
            "taskmanager.host": "localhost",
            "taskmanager.memory.process.size": cfg.taskmanager_memory,
            "taskmanager.numberOfTaskSlots": cfg.task_slots,
            "parallelism.default": 1,
            "rest.address": "localhost",
            "rest.bind-address": "localhost",
            "rest.port": cfg.rest_port,
            "execution.checkpointing.dir": (self.home / "checkpoints").resolve().as_uri(),
            "execution.checkpointing.savepoint-dir": (self.home / "savepoints").resolve().as_uri(),
            "python.executable": sys.executable,
            "python.client.executable": sys.executable,
            "python.execution-mode": "thread",
            # pemja (PyFlink's thread mode) must be loaded once per TaskManager by the parent classloader:
            # loaded per job, a second Python job on the same TaskManager fails on Java 17 with
            # NoSuchFieldException: loadedLibraryNames.
            "classloader.parent-first-patterns.additional": "pemja.",
        }
        text = "".join(f"{k}: {json.dumps(v) if isinstance(v, str) else v}\n" for k, v in settings.items())
        if cfg.prometheus:
            text += _metrics_prometheus_yaml(cfg.prometheus_ports)
        return text

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + self.config.startup_timeout_s
        url = f"http://localhost:{self.config.rest_port}/overview"
        while time.monotonic() < deadline:
            overview = rest_get(url)
            if overview and _int(overview.get("taskmanagers", 0)) >= 1:
                return
            if not self.pids():
                raise SetupError(f"the Flink cluster exited while starting; see the logs in {self.log_dir}")
            time.sleep(0.5)
        raise SetupError(f"the Flink cluster did not become ready within {self.config.startup_timeout_s:.0f} s; "
                         f"see the logs in {self.log_dir}")

    def taskmanager_pids(self) -> list[int]:
        """The cluster's TaskManager processes (its JobManager is the other marked process)."""
        return [p for p in self.pids() if "TaskManagerRunner" in process.cmdline(p)]

    def jobmanager_pids(self) -> list[int]:
        return [p for p in self.pids() if "TaskManagerRunner" not in process.cmdline(p)]

    def expected_taskmanagers(self) -> int:
        """How many TaskManagers the cluster was started with (1 for a cluster started before this was kept)."""
        return max(1, _int(self._info().get("taskmanagers", 1)))

    def orphaned_workers(self) -> list[int]:
        """Python workers (process mode) of this cluster's TaskManagers that died: Flink does not end them."""
        return process.orphaned_workers(self.service_id, self.pids())

    def heal(self, taskmanagers: int = 1) -> Healed:
        """Bring a running cluster back to its TaskManagers after some died (a standalone cluster does not
        restart them): end the dead ones' orphaned Python workers, then start as many as are missing from
        the larger of `taskmanagers` and the count it was started with."""
        if not self.jobmanager_pids():
            raise SetupError(f"the JobManager of {self.home} is not running (its TaskManagers are: pids "
                             f"{self.taskmanager_pids()}); `drnflow down`, then `drnflow up --cluster`")
        orphans = self.orphaned_workers()
        if orphans:
            process.terminate(orphans, 5.0)
        wanted = max(taskmanagers, self.expected_taskmanagers())
        alive = len(self.taskmanager_pids())
        for _ in range(wanted - alive):
            self.start_taskmanager()
        if wanted > self.expected_taskmanagers():
            self.info_file.write_text(json.dumps({**self._info(), "taskmanagers": wanted}))
        return Healed(alive=alive, started=max(0, wanted - alive), orphans_ended=len(orphans))

    def start_taskmanager(self, timeout_s: float = 90.0) -> None:
        """One more TaskManager for this cluster (after one died, or to add slots); returns once the
        JobManager counts more TaskManagers than it did."""
        url = f"http://localhost:{self.config.rest_port}/overview"
        before = _int((rest_get(url) or {}).get("taskmanagers", 0))
        proc = subprocess.run(["bash", str(flink_home() / "bin" / "taskmanager.sh"), "start"], env=self.env(),
                              capture_output=True, text=True)
        if proc.returncode != 0:
            raise SetupError(f"taskmanager.sh start failed: {(proc.stdout + proc.stderr).strip()[-600:]}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if _int((rest_get(url) or {}).get("taskmanagers", 0)) > before:
                return
            time.sleep(0.5)
        raise SetupError(f"the new TaskManager did not register within {timeout_s:.0f} s; see {self.log_dir}")

    def stop(self, timeout_s: float = 30.0) -> list[int]:
        """Stop the daemons, then whatever still carries the cluster's environment: the Python workers
        (process mode) of a TaskManager that was killed outlive it, orphaned, and would run for ever."""
        pids = self.pids()
        if pids:
            process.terminate(pids, timeout_s)
        workers = process.find_in_environment(self.service_id)
        if workers:
            process.terminate(workers, 5.0)
            pids = [*pids, *workers]
        for pid_file in self.pid_dir.glob("*.pid") if self.pid_dir.exists() else []:
            pid_file.unlink(missing_ok=True)
        return pids


def prometheus_ports(spec: str) -> list[int]:
    """Every port of a reporter port spec ("9249-9259", "9301,9302", "9301-9303,9400"), in order; a
    ValueError names what is wrong with it."""
    text = spec.replace(" ", "")
    if not _PORT_SPEC.match(text):
        raise ValueError(f"prometheus ports must be ports or ranges separated by commas (e.g. 9249-9259), "
                         f"got {spec!r}")
    ports: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if not 1 <= first <= last <= 65535:
            raise ValueError(f"prometheus ports must be TCP ports (1-65535), low to high, got {part!r}")
        ports.extend(range(first, last + 1))
    return ports


def _metrics_prometheus_yaml(ports: str) -> str:
    """deploy/flink/metrics-prometheus.yaml with its port range replaced by `ports`."""
    text = (PROJECT_ROOT / "deploy" / "flink" / "metrics-prometheus.yaml").read_text()
    key = "metrics.reporter.prom.port:"
    if key not in text:
        raise SetupError(f"deploy/flink/metrics-prometheus.yaml has no {key!r} line")
    lines = [f"{key} {ports.replace(' ', '')}" if ln.startswith(key) else ln for ln in text.splitlines()]
    return "\n".join(lines) + "\n"


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def _wheel_java_opts() -> str:
    """The wheel's `env.java.opts.all` (the --add-opens Flink needs on Java 17)."""
    text = (flink_home() / "conf" / "config.yaml").read_text()
    for line in text.splitlines():
        stripped = line.strip()
        if stripped.startswith("all:") and "--add-opens" in stripped:
            return stripped[len("all:"):].strip()
    return ""


def rest_get(url: str, timeout_s: float = 2.0) -> dict[str, object] | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as resp:
            data: dict[str, object] = json.loads(resp.read().decode())
            return data
    except (urllib.error.URLError, OSError, ValueError):
        return None
