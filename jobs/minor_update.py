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
import os
import site
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pyflink.datastream import KeyedCoProcessFunction

from jobs.minor_update_config import MinorUpdateConfig, add_arguments, from_args
from operators.paths import PROJECT_ROOT
from schemas import serde

if TYPE_CHECKING:
    from pyflink.datastream import StreamExecutionEnvironment

log = logging.getLogger(__name__)

#: Kinds of model-weights records the learner takes weights from (MINOR ones are its own output).
REBASE_KINDS = ("MAJOR", "ROLLBACK")


@dataclass
class WeightsLog:
    """What the model-weights topic held when the job was built: the latest MAJOR per model (the
    starting weights), the highest version per model (new versions must not reuse a number) and the
    end offset per partition (the live model-weights source starts there)."""

    latest_major: dict[str, dict[str, Any]] = field(default_factory=dict)
    max_version: dict[str, int] = field(default_factory=dict)
    end_offsets: dict[int, int] = field(default_factory=dict)

    def add(self, record: Mapping[str, Any]) -> None:
        model_id, version = str(record["model_id"]), int(record["version"])
        self.max_version[model_id] = max(self.max_version.get(model_id, -1), version)
        if record["kind"] == "MAJOR":
            held = self.latest_major.get(model_id)
            if held is None or version > int(held["version"]):
                self.latest_major[model_id] = dict(record)


def read_weights_log(bootstrap: str, topic: str, timeout_s: float = 30.0) -> WeightsLog:
    """Read the model-weights topic from the beginning to its current end (committed records only)."""
    import time

    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap,
        group_id=None,
        enable_auto_commit=False,
        isolation_level="read_committed",
        client_id="drnflow-minor-update-weights-log",
        max_partition_fetch_bytes=64 * 1024 * 1024,
        fetch_max_bytes=64 * 1024 * 1024,
    )
    out = WeightsLog()
    try:
        partitions = consumer.partitions_for_topic(topic)
        if not partitions:
            raise ValueError(f"topic {topic!r} does not exist on {bootstrap}; create the topics first")
        tps = [TopicPartition(topic, p) for p in sorted(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        ends = consumer.end_offsets(tps)
        out.end_offsets = {tp.partition: int(ends[tp]) for tp in tps}
        deadline = time.monotonic() + timeout_s
        while any(consumer.position(tp) < ends[tp] for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout_s:.0f} s")
            for records in consumer.poll(timeout_ms=500).values():
                for r in records:
                    if r.value is None or r.offset >= ends[TopicPartition(r.topic, r.partition)]:
                        continue
                    try:
                        out.add(serde.decode("ModelWeights", r.value))
                    except serde.SerdeError as e:
                        log.warning("%s[%d]@%d: skipping undecodable ModelWeights: %s", topic, r.partition,
                                    r.offset, e)
    finally:
        consumer.close()
    return out


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
        "schema.impression": schema_text["Impression"],
        "schema.click": schema_text["Click"],
        "schema.dead-letter": schema_text["DeadLetter"],
        "sink.transactional-id-prefix": cfg.transactional_id_prefix,
        "sink.transaction-timeout.ms": str(cfg.transaction_timeout_ms),
        "model-weights.start-offsets": ",".join(f"{p}:{o}" for p, o in sorted(weights_log.end_offsets.items())),
        "fault.fail-after-impressions": str(cfg.fault.fail_after_impressions),
        "fault.marker": cfg.fault.marker,
        "fault.throttle-us": str(cfg.fault.throttle_us),
        "probe.dir": cfg.probe_dir or "",
    }
    return settings


def _schema_text(name: str) -> str:
    import json

    return json.dumps(serde.schema_json(name))


def parse_ranges(text: str, topic: str) -> list[tuple[str, int, int, int]]:
    """Offset ranges as the JVM writes them ("partition:start:end;...", end exclusive)."""
    out = []
    for part in text.split(";"):
        if part:
            p, start, end = (int(x) for x in part.split(":"))
            out.append((topic, p, start, end))
    return out


def make_env(cfg: MinorUpdateConfig) -> StreamExecutionEnvironment:
    """A stream environment with checkpointing, the Python thread mode and drnflow's jars."""
    from pyflink.common import Configuration
    from pyflink.datastream import StreamExecutionEnvironment

    from operators.jars import flink_jars, jar_urls
    from operators.jvm_jar import jvm_jar

    # The embedded Python of thread mode starts from the base interpreter's prefix: point it at this
    # checkout (drnflow, jobs, operators, models) and this environment's site-packages (pemja, numpy).
    wanted = [str(PROJECT_ROOT), *site.getsitepackages()]
    path = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    os.environ["PYTHONPATH"] = os.pathsep.join([*wanted, *(p for p in path if p not in wanted)])
    checkpoints = cfg.checkpoint_path()
    checkpoints.mkdir(parents=True, exist_ok=True)
    conf = Configuration()
    for key, value in {
        "python.execution-mode": "thread",
        "python.executable": sys.executable,
        "python.client.executable": sys.executable,
        "python.fn-execution.bundle.time": "100",
        "execution.checkpointing.interval": f"{cfg.checkpoint_interval_ms} ms",
        "execution.checkpointing.mode": "EXACTLY_ONCE",
        "execution.checkpointing.dir": checkpoints.as_uri(),
        "state.backend.type": "hashmap",
        "restart-strategy.type": "fixed-delay",
        "restart-strategy.fixed-delay.attempts": "3",
        "restart-strategy.fixed-delay.delay": "1 s",
        "pipeline.name": cfg.job_name,
    }.items():
        conf.set_string(key, value)
    env = StreamExecutionEnvironment.get_execution_environment(conf)
    env.set_parallelism(cfg.parallelism)
    env.add_jars(*jar_urls([*flink_jars(), jvm_jar()]))
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
    from pyflink.common import Row, Types
    from pyflink.datastream import DataStream

    props = _java_properties(jvm_settings(cfg, weights_log))
    j_env = env._j_stream_execution_environment
    rows = DataStream(_pipeline().windowRows(j_env, props))
    weights = DataStream(_pipeline().modelWeights(j_env, props))

    def rebase_candidates(raw: Row) -> Iterator[Row]:
        try:
            record = serde.decode("ModelWeights", bytes(raw[2]))
        except serde.SerdeError as e:
            log.warning("model-weights[%d]@%d: undecodable, ignored: %s", raw[0], raw[1], e)
            return
        if record["kind"] in REBASE_KINDS:
            yield Row(str(record["model_id"]), bytes(raw[2]))

    majors = weights.flat_map(
        rebase_candidates, output_type=Types.ROW([Types.STRING(), Types.PRIMITIVE_ARRAY(Types.BYTE())])
    ).name("rebase-candidates")
    outputs = (
        rows.connect(majors)
        .key_by(lambda r: r[0], lambda m: m[0], key_type=Types.STRING())
        .process(DbgdStep(cfg, weights_log), output_type=OUTPUT_TYPE())
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


class DbgdStep(KeyedCoProcessFunction):
    """Per model_id: buffer a window's rows until the watermark says the window is final, then run
    DbgdLearner.on_window and the trigger schedule and emit WinRate, ModelWeights and trigger records.

    Flink keyed state holds the learner's snapshot, the trigger schedule's snapshot and the pending
    rows, so a restart from a checkpoint resumes with the same weights. Every emitted WinRate also
    updates the operator's per-model Flink metrics (operators.flink_metrics).
    """

    def __init__(self, cfg: MinorUpdateConfig, weights_log: WeightsLog) -> None:
        self.cfg = cfg
        self.initial_major = {m: serde.encode("ModelWeights", r) for m, r in weights_log.latest_major.items()}
        self.max_version = dict(weights_log.max_version)

    def open(self, runtime_context: Any) -> None:
        from pyflink.common import Types
        from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

        self.learner_state = runtime_context.get_state(ValueStateDescriptor("learner", Types.PICKLED_BYTE_ARRAY()))
        self.trigger_state = runtime_context.get_state(ValueStateDescriptor("triggers", Types.PICKLED_BYTE_ARRAY()))
        self.pending = runtime_context.get_map_state(
            MapStateDescriptor("pending", Types.LONG(), Types.PICKLED_BYTE_ARRAY())
        )
        self.dbgd = self.cfg.dbgd_config()
        self.trigger_config = self.cfg.trigger_config()
        names = self.cfg.topics
        self.topic_win_rates = names.win_rates
        self.topic_weights = names.model_weights
        self.topic_triggers = names.major_update_triggers
        self.topic_impressions = names.impressions
        self.topic_clicks = names.clicks
        self.final_after = self.cfg.window_ms + self.cfg.attribution_window_ms
        from operators.flink_metrics import WinRateMetrics

        # Per model: gauges of the last window row, counters of decisions (a few dict writes per row).
        self.metrics = WinRateMetrics(runtime_context.get_metrics_group())

    # --- inputs --------------------------------------------------------------------------------------
    def process_element1(self, row: Any, ctx: Any) -> Iterator[Any]:
        """One final (model, window, version, seed) row from the JVM: hold it until its window is final."""
        values = row.as_dict()
        ws = int(values["window_start"])
        held = self.pending.get(ws) or []
        held.append(values)
        self.pending.put(ws, held)
        ctx.timer_service().register_event_time_timer(ws + self.final_after)
        return iter(())

    def process_element2(self, major: Any, ctx: Any) -> Iterator[Any]:
        """A MAJOR (or ROLLBACK) version arrived on model-weights: rebase the learner on it now."""
        model_id = str(major[0])
        record = serde.decode("ModelWeights", bytes(major[1]))
        learner, out = self._learner(model_id, created_at=int(record["created_at"]), seed_model=False)
        try:
            if learner.rebase(record):
                log.info("model %s: rebased on %s v%d", model_id, record["kind"], record["version"])
        except ValueError as e:  # WeightsError: a corrupt version must not stop the job
            log.warning("model %s: not rebasing on %s v%s: %s", model_id, record["kind"], record["version"], e)
        self.learner_state.update(learner.snapshot())
        yield from out

    def on_timer(self, timestamp: int, ctx: Any) -> Iterator[Any]:
        model_id = str(ctx.get_current_key())
        due = sorted(ws for ws in self.pending.keys() if ws + self.final_after <= timestamp)  # noqa: SIM118
        if not due:
            return
        from models.triggers import TriggerSchedule

        learner, out = self._learner(model_id, created_at=due[0] + self.cfg.window_ms)
        yield from out
        schedule = TriggerSchedule(self.trigger_config)
        held = self.trigger_state.value()
        if held is not None:
            schedule.restore(model_id, held)
        key = model_id.encode("utf-8")
        for ws in due:
            rows = self.pending.get(ws)
            result = learner.on_window(rows)
            for win_rate in result.win_rates:
                self.metrics.record(win_rate)
                yield _out(self.topic_win_rates, key, serde.encode("WinRate", win_rate))
            if result.weights is not None:
                yield _out(self.topic_weights, key, serde.encode("ModelWeights", result.weights))
            ranges = []
            for r in rows:
                ranges += parse_ranges(r["impression_offsets"], self.topic_impressions)
                ranges += parse_ranges(r["click_offsets"], self.topic_clicks)
            trigger = schedule.on_window_end(model_id, ws, ws + self.cfg.window_ms, learner.minor_count,
                                             _version(learner), ranges)
            if trigger is not None:
                yield _out(self.topic_triggers, key, serde.encode("MajorUpdateTrigger", trigger))
            self.pending.remove(ws)
        self.learner_state.update(learner.snapshot())
        self.trigger_state.update(schedule.snapshot(model_id))

    # --- the learner -------------------------------------------------------------------------------
    def _learner(self, model_id: str, created_at: int, seed_model: bool = True) -> tuple[Any, list[Any]]:
        """The model's learner from state; on first sight, from the latest MAJOR read at start-up, else
        (with `seed_model`) a new MAJOR built from the seed, published so the ranker and replays know it."""
        from models.dbgd import DbgdLearner

        learner = DbgdLearner(model_id, self.dbgd)
        held = self.learner_state.value()
        if held is not None:
            learner.restore(held)
            return learner, []
        out = []
        major = self.initial_major.get(model_id)
        if major is not None:
            learner.rebase(serde.decode("ModelWeights", major))
        elif seed_model:
            record = initial_major(self.cfg, model_id, self.max_version.get(model_id, -1) + 1, created_at)
            learner.rebase(record)
            out.append(_out(self.topic_weights, model_id.encode("utf-8"), serde.encode("ModelWeights", record)))
        # Versions already on the topic (e.g. MINORs of an earlier run) are never reused.
        learner.reserve_versions_through(self.max_version.get(model_id, -1))
        return learner, out


def initial_major(cfg: MinorUpdateConfig, model_id: str, version: int, created_at: int) -> dict[str, Any]:
    """A MAJOR ModelWeights record of a fresh DRN network drawn from `cfg.seed`."""
    import torch

    from models.drn import DrnConfig, DrnQNetwork
    from models.weights import flatten, layout_of, make_model_weights_record

    torch.set_num_threads(1)
    arch = DrnConfig(cfg.initial_state_dim, cfg.initial_action_dim, seed=cfg.seed)
    net = DrnQNetwork(arch)
    return make_model_weights_record(
        model_id=model_id, version=version, parent_version=None, kind="MAJOR", flat=flatten(net),
        layout=layout_of(net), created_at=created_at, explore_seeds=[], architecture=arch.to_json(),
    )


def _version(learner: Any) -> int:
    return -1 if learner.version is None else int(learner.version)


def _out(topic: str, key: bytes, value: bytes) -> Any:
    from pyflink.common import Row

    return Row(topic, key, value)


def run(cfg: MinorUpdateConfig) -> None:
    """Build and execute the job; returns when a bounded run has finished (unbounded: never)."""
    run_with(cfg, read_weights_log(cfg.bootstrap, cfg.topics.model_weights))


def run_with(cfg: MinorUpdateConfig, weights_log: WeightsLog) -> None:
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
    run(cfg)
    return 0


if __name__ == "__main__":
    sys.exit(main())
