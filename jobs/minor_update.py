"""The minor-update Flink job (design.md §4-§5): clicks attributed to impressions, per-window win-rates,
a DBGD update per window and model, major-update triggers; exactly-once into Kafka.

Per-event work (decode, attribution, window counts, dead letters) runs in the JVM operators of
operators/jvm (drnflow-jvm.jar), built here over py4j; Python sees one row per (model_id, window,
model_version, explore_seed) and runs the per-window DBGD step (models/dbgd.py) with the learner
kept in Flink keyed state. Run: `python -m jobs.minor_update --bounded --bootstrap HOST:PORT ...`
or `drnflow minor-update ...`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from jobs.minor_update_config import MinorUpdateConfig, add_arguments, from_args
from operators.dbgd_step import DbgdStep, rebase_candidates
from operators.kafka_io.security import FLINK_SHADED_PREFIX, from_environment
from operators.model_weights_log import WeightsLog, read_weights_log
from schemas import serde

if TYPE_CHECKING:
    from pyflink.datastream import StreamExecutionEnvironment

log = logging.getLogger(__name__)

def jvm_settings(cfg: MinorUpdateConfig, weights_log: WeightsLog) -> dict[str, str]:
    """The flat settings drnflow.jvm.JobSettings reads."""
    names = cfg.topics
    schema_text = {name: _schema_text(name) for name in ("Impression", "Click", "DeadLetter")}
    settings = {
        "job.name": cfg.job_name,
        "bootstrap": cfg.bootstrap,
        "group.id": f"{cfg.job_name}-{cfg.topic_prefix}",
        "topic.impressions": names.impressions,
        "topic.clicks": names.clicks,
        "topic.model-weights": names.model_weights,
        "topic.dead-letters": names.dead_letters,
        "bounded": str(cfg.bounded).lower(),
        "window.ms": str(cfg.window_ms),
        "attribution-window.ms": str(cfg.attribution_window_ms),
        "click-horizon.ms": str(cfg.click_horizon_ms),
        "out-of-orderness.ms": str(cfg.out_of_orderness_ms),
        "idleness.ms": str(cfg.idleness_ms),
        "max-event-time-skew.ms": str(cfg.max_event_time_skew_ms),
        "max-source-drift.ms": str(cfg.max_source_drift_ms),
        "schema.impression": schema_text["Impression"],
        "schema.click": schema_text["Click"],
        "schema.dead-letter": schema_text["DeadLetter"],
        "schema.impression.previous": _previous_schema_text("Impression"),
        "schema.pdgd-batch": _schema_text("PdgdBatch"),
        "sink.transactional-id-prefix": cfg.transactional_id_prefix,
        "sink.transaction-timeout.ms": str(cfg.transaction_timeout_ms),
        "model-weights.start-offsets": ",".join(f"{p}:{o}" for p, o in sorted(weights_log.end_offsets.items())),
        "fault.fail-after-impressions": str(cfg.fault.fail_after_impressions),
        "fault.marker": cfg.fault.marker,
        "fault.failures": str(cfg.fault.failures),
        "fault.throttle-us": str(cfg.fault.throttle_us),
        "probe.dir": cfg.probe_dir or "",
        # The job authenticates as this process does (DRNFLOW_KAFKA_CONFIG); Flink's connector shades the clients.
        **{f"kafka.client.{k}": v for k, v in from_environment().java(FLINK_SHADED_PREFIX).items()},
    }
    return settings


def _schema_text(name: str) -> str:
    import json

    return json.dumps(serde.schema_json(name))


def _previous_schema_text(name: str) -> str:
    """The previous release's schema when it differs from the current one, else "" (nothing to fall back to)."""
    import json

    previous = serde.previous_schema_json(name)
    return "" if previous is None else json.dumps(previous)


def make_env(cfg: MinorUpdateConfig) -> StreamExecutionEnvironment:
    """The job's environment (operators/flinkenv.py) with the JVM operators' jar."""
    from operators.flinkenv import PythonJobEnv, python_job_env
    from operators.jvm_jar import jvm_jar

    env: StreamExecutionEnvironment = python_job_env(PythonJobEnv(
        job_name=cfg.job_name, parallelism=cfg.parallelism, checkpoint_interval_ms=cfg.checkpoint_interval_ms,
        checkpoint_dir=cfg.checkpoint_path(), extra_jars=(jvm_jar(),), state_backend=cfg.state_backend,
    ))
    return env


def _java_properties(settings: Mapping[str, str]) -> Any:
    from pyflink.java_gateway import get_gateway

    props = get_gateway().jvm.java.util.Properties()
    for key, value in settings.items():
        props.setProperty(key, value)
    return props


def _pipeline() -> Any:
    from pyflink.java_gateway import get_gateway

    return get_gateway().jvm.drnflow.jvm.MinorUpdatePipeline


def build(env: StreamExecutionEnvironment, cfg: MinorUpdateConfig, weights_log: WeightsLog) -> None:
    """The whole job: JVM sources to window rows, the Python DBGD step, the exactly-once outputs."""
    from pyflink.common import Types
    from pyflink.datastream import DataStream

    props = _java_properties(jvm_settings(cfg, weights_log))
    j_env = env._j_stream_execution_environment
    rows = DataStream(_pipeline().windowRows(j_env, props))
    weights = DataStream(_pipeline().modelWeights(j_env, props))

    majors = weights.flat_map(
        rebase_candidates, output_type=Types.ROW([Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
    ).name("rebase-candidates")
    outputs = (
        rows.connect(majors)
        .key_by(lambda r: r[0], lambda m: m[0], key_type=Types.STRING())
        .process(DbgdStep(cfg.step_config(), weights_log), output_type=OUTPUT_TYPE())
        .name("dbgd-step")
        .uid("dbgd-step")
    )
    _pipeline().sinkRouted(outputs._j_data_stream, props)


def OUTPUT_TYPE() -> Any:
    """(topic, key, value) rows the JVM sink writes as they are."""
    from pyflink.common import Types

    return Types.ROW([Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE()), Types.PRIMITIVE_ARRAY(Types.BYTE())])


def build_decode_only(env: StreamExecutionEnvironment, cfg: MinorUpdateConfig) -> None:
    """The benchmark's baseline: the same Kafka sources and Avro decoding, nothing after."""
    _pipeline().decodeOnly(env._j_stream_execution_environment,
                           _java_properties(jvm_settings(cfg, WeightsLog())))


def build_raw_bytes_only(env: StreamExecutionEnvironment, cfg: MinorUpdateConfig) -> None:
    """The benchmark's ceiling: the same Kafka sources read as bytes, no decode, nothing after."""
    _pipeline().rawBytesOnly(env._j_stream_execution_environment,
                             _java_properties(jvm_settings(cfg, WeightsLog())))


def run(cfg: MinorUpdateConfig) -> None:
    """Build and execute the job; returns when a bounded run has finished (unbounded: never)."""
    run_with(cfg, read_weights_log(cfg.bootstrap, cfg.topics.model_weights))


def run_with(cfg: MinorUpdateConfig, weights_log: WeightsLog) -> None:
    """Build and execute the job on what `weights_log` read; ValueError when --alpha/--perturbation
    disagree with a served version (nothing is started then)."""
    cfg.refuse_explore_mismatch(weights_log)
    env = make_env(cfg)
    build(env, cfg, weights_log)
    log.info("minor-update: %s", cfg.describe())
    env.execute(cfg.job_name)


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m jobs.minor_update", description=__doc__.splitlines()[0])
    add_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    try:
        cfg = from_args(args)
    except ValueError as e:
        print(f"minor-update: {e}", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        run(cfg)
    except ValueError as e:  # a missing topic, explore parameters that disagree with the served version
        print(f"minor-update: {e}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
