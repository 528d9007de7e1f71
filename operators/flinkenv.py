"""Creating PyFlink environments the drnflow way: pinned connector jars, thread mode, checkpoints."""

from __future__ import annotations

import os
import site
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operators.flink_logging import quiet_gateway_log4j
from operators.jars import flink_jars, jar_urls
from operators.paths import PROJECT_ROOT


@dataclass(frozen=True)
class FlinkEnvConfig:
    parallelism: int = 1
    checkpoint_interval_ms: int | None = None
    checkpoint_dir: str | None = None
    extra_jars: tuple[Path, ...] = ()
    python_thread_mode: bool = True

    def __post_init__(self) -> None:
        if self.parallelism < 1:
            raise ValueError(f"parallelism must be >= 1, got {self.parallelism}")
        if self.checkpoint_interval_ms is not None and self.checkpoint_interval_ms < 10:
            raise ValueError(f"checkpoint_interval_ms must be >= 10, got {self.checkpoint_interval_ms}")


def stream_env(cfg: FlinkEnvConfig) -> Any:
    """A StreamExecutionEnvironment with the Kafka connector + Avro jars loaded."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    quiet_gateway_log4j()  # before the gateway starts
    conf = Configuration()
    conf.set_string("pipeline.jars", ";".join(jar_urls([*flink_jars(), *cfg.extra_jars])))
    if cfg.python_thread_mode:
        conf.set_string("python.execution-mode", "thread")
    if cfg.checkpoint_interval_ms is not None:
        conf.set_string("execution.checkpointing.interval", f"{cfg.checkpoint_interval_ms} ms")
    if cfg.checkpoint_dir is not None:
        conf.set_string("execution.checkpointing.dir", cfg.checkpoint_dir)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg.parallelism)
    return env


def table_env(cfg: FlinkEnvConfig) -> Any:
    """A StreamTableEnvironment over `stream_env(cfg)`."""
    from pyflink.table import StreamTableEnvironment

    return StreamTableEnvironment.create(stream_env(cfg))


#: Restart forever, backing off 1 s, 2 s, ... up to 1 min, and forget past failures after 10 min of running.
#: A fixed-delay strategy of 3 attempts never resets: the fourth failure of a long-running job (a
#: TaskManager lost, a broker restart) used to leave it FAILED for good (issue 11).
RESTART_STRATEGY: dict[str, str] = {
    "restart-strategy.type": "exponential-delay",
    "restart-strategy.exponential-delay.initial-backoff": "1 s",
    "restart-strategy.exponential-delay.max-backoff": "1 min",
    "restart-strategy.exponential-delay.backoff-multiplier": "2.0",
    "restart-strategy.exponential-delay.reset-backoff-threshold": "10 min",
    "restart-strategy.exponential-delay.jitter-factor": "0.1",
    "restart-strategy.exponential-delay.attempts-before-reset-backoff": str(2**31 - 1),
}


@dataclass(frozen=True)
class PythonJobEnv:
    """A job with Python operators in thread mode, exactly-once checkpoints and drnflow's jars."""

    job_name: str
    parallelism: int
    checkpoint_interval_ms: int
    #: A local folder, or a URI Flink's file systems know (s3://, hdfs://, gs://, file://): see checkpoint_uri.
    checkpoint_dir: Path | str
    extra_jars: tuple[Path, ...] = ()
    #: One of STATE_BACKENDS.
    state_backend: str = "hashmap"

    def __post_init__(self) -> None:
        if self.state_backend not in STATE_BACKENDS:
            raise ValueError(f"state backend must be one of {', '.join(STATE_BACKENDS)}, got {self.state_backend!r}")


#: Flink's settings per keyed-state backend. hashmap keeps state as objects on the TaskManager's heap (no
#: serialization per access) and checkpoints it whole; rocksdb keeps it serialized on local disk, in managed
#: (off-heap) memory that Flink bounds, and checkpoints only the files changed since the last checkpoint.
STATE_BACKENDS: dict[str, dict[str, str]] = {
    "hashmap": {"state.backend.type": "hashmap"},
    "rocksdb": {"state.backend.type": "rocksdb", "execution.checkpointing.incremental": "true"},
}


def python_execution_mode() -> str:
    """PyFlink's Python execution mode for drnflow's jobs: `thread` (embedded in the TaskManager, the
    default) or `process` (a Python worker per task), from DRNFLOW_PYTHON_MODE."""
    mode = os.environ.get("DRNFLOW_PYTHON_MODE", "thread")
    if mode not in ("thread", "process"):
        raise ValueError(f"DRNFLOW_PYTHON_MODE must be thread or process, got {mode!r}")
    return mode


#: Set by `drnflow submit --package`: the interpreter the cluster runs the job's Python with (inside the
#: shipped environment archive), instead of this one, which only the submitting machine has.
CLUSTER_PYTHON_ENV = "DRNFLOW_CLUSTER_PYTHON"


def cluster_python() -> str:
    """The cluster-side Python of a job: DRNFLOW_CLUSTER_PYTHON when a package ships one, else this one."""
    return os.environ.get(CLUSTER_PYTHON_ENV) or sys.executable


def point_thread_mode_at_checkout() -> None:
    """The embedded Python of thread mode starts from the base interpreter's prefix: point it at this
    checkout (schemas, models, operators, jobs, drnflow) and this environment's site-packages (pemja,
    numpy), ahead of anything already on PYTHONPATH."""
    wanted = [str(PROJECT_ROOT), *site.getsitepackages()]
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([*wanted, *(p for p in path if p not in wanted)])


def checkpoint_uri(where: Path | str) -> str:
    """The checkpoint URI of a local folder (created, made absolute) or of a URI with a scheme, kept as it is:
    a real cluster checkpoints to storage every TaskManager and the JobManager reach (s3://bucket/path with
    Flink's s3 plugin, hdfs://namenode/path), since a local folder exists only on the machine that has it."""
    text = str(where)
    if "://" in text and not text.startswith("file://"):
        return text
    local = Path(text.removeprefix("file://")).resolve()
    local.mkdir(parents=True, exist_ok=True)
    return local.as_uri()


def python_job_env(cfg: PythonJobEnv) -> Any:
    """A StreamExecutionEnvironment for `cfg`: thread mode, EXACTLY_ONCE checkpoints into
    `checkpoint_dir`, `state_backend`, RESTART_STRATEGY, the connector jars plus `extra_jars`."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    point_thread_mode_at_checkout()
    quiet_gateway_log4j()  # before the gateway starts
    checkpoints = checkpoint_uri(cfg.checkpoint_dir)
    conf = Configuration()
    for key, value in {
        "python.execution-mode": python_execution_mode(),
        "python.executable": cluster_python(),
        "python.client.executable": sys.executable,
        "python.fn-execution.bundle.time": "100",
        "execution.checkpointing.interval": f"{cfg.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoints,
        **STATE_BACKENDS[cfg.state_backend],
        **RESTART_STRATEGY,
        "pipeline.name": cfg.job_name,
    }.items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg.parallelism)
    env.add_jars(*jar_urls([*flink_jars(), *cfg.extra_jars]))
    return env
