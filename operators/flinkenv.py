"""Creating PyFlink environments the drnflow way: pinned connector jars, thread mode, checkpoints."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from operators.jars import flink_jars, jar_urls


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
