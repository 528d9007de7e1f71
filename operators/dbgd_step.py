"""The minor-update job's one Python stream operator: the per-window DBGD (or PDGD) step (design.md §5).

The JVM operators (operators/jvm) hand it one row per (model_id, window, model_version, explore_seed)
once the window's outcomes are final; it keeps one DbgdLearner and one trigger schedule per model in
Flink keyed state and emits (topic, key, value) rows that the JVM's exactly-once sink writes as they are.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from pyflink.datastream import KeyedCoProcessFunction

from models.dbgd import DbgdConfig
from models.pdgd_learner import PdgdConfig, window_learner
from models.perturbation import ExploreParams
from models.triggers import TriggerConfig, TriggerSchedule
from operators.model_weights_log import WeightsLog
from schemas import serde
from schemas.topics import TopicNames

log = logging.getLogger(__name__)

#: Kinds of model-weights records the learner takes weights from (MINOR ones are its own output).
REBASE_KINDS = ("MAJOR", "ROLLBACK")


@dataclass(frozen=True)
class InitialModel:
    """The seeded DRN network a model_id without any MAJOR version starts from."""

    seed: int = 0
    state_dim: int = 16
    action_dim: int = 16
    explore: ExploreParams | None = None


@dataclass(frozen=True)
class DbgdStepConfig:
    """What the step needs of the job's configuration (jobs/minor_update_config.py builds it)."""

    dbgd: DbgdConfig
    triggers: TriggerConfig
    topics: TopicNames
    window_ms: int
    attribution_window_ms: int
    initial_model: InitialModel
    #: Set: the learner is PDGD (--learner pdgd), stepping on the rows' pdgd_batch; None: DBGD.
    pdgd: PdgdConfig | None = None


def rebase_candidates(raw: Any) -> Iterator[Any]:
    """(model_id, bytes) of each decodable MAJOR/ROLLBACK record of the model-weights source row
    (partition, offset, value); anything else is ignored (an undecodable one with a warning)."""
    from pyflink.common import Row

    try:
        record = serde.decode("ModelWeights", bytes(raw[2]))
    except serde.SerdeError as e:
        log.warning("model-weights[%d]@%d: undecodable, ignored: %s", raw[0], raw[1], e)
        return
    if record["kind"] in REBASE_KINDS:
        yield Row(str(record["model_id"]), bytes(raw[2]))


def seeded_initial_record(model_id: str, state_dim: int, action_dim: int, seed: int, **kwargs: Any
                           ) -> dict[str, Any] | None:
    """models.initial_model's MAJOR of a model with no version yet, or None where torch is missing.

    Building the seeded network needs torch, which nothing else of a DBGD job does (a packaged job's Python
    leaves it out), so it is imported here. Without it the model stays without weights: its rows are
    decided STALE ("no MAJOR version seen") until a MAJOR arrives on model-weights, and the job runs on."""
    try:
        from models.initial_model import initial_drn_record
    except ImportError as e:
        log.error("model %s has no version on model-weights, and its seeded initial network cannot be built "
                  "without torch (%s): its windows stay STALE until a MAJOR is published (`drnflow model init`)",
                  model_id, e)
        return None
    return initial_drn_record(model_id, state_dim, action_dim, seed, **kwargs)


def parse_ranges(text: str, topic: str) -> list[tuple[str, int, int, int]]:
    """Offset ranges as the JVM writes them ("partition:start:end;...", end exclusive)."""
    out = []
    for part in text.split(";"):
        if part:
            p, start, end = (int(x) for x in part.split(":"))
            out.append((topic, p, start, end))
    return out


class DbgdStep(KeyedCoProcessFunction):
    """Per model_id: buffer a window's rows until the watermark says the window is final, then run
    DbgdLearner.on_window and the trigger schedule and emit WinRate, ModelWeights and trigger records.

    Flink keyed state holds the learner's snapshot, the trigger schedule's snapshot and the pending
    rows, so a restart from a checkpoint resumes with the same weights. Every emitted WinRate also
    updates the operator's per-model Flink metrics (operators.flink_metrics).
    """

    def __init__(self, cfg: DbgdStepConfig, weights_log: WeightsLog) -> None:
        self.cfg = cfg
        self.initial_major = {m: serde.encode("ModelWeights", r) for m, r in weights_log.latest_major.items()}
        self.initial_parent = {m: serde.encode("ModelWeights", r) for m, r in weights_log.major_parent.items()}
        self.initial_latest = {m: serde.encode("ModelWeights", r) for m, r in weights_log.latest.items()}
        self.max_version = dict(weights_log.max_version)

    def open(self, runtime_context: Any) -> None:
        import os

        from pyflink.common import Types

        if not os.path.exists(__file__):
            # Thread mode: this TaskManager's Python keeps the modules of the first job it ran (whose files
            # are gone). The code is that job's; a new drnflow version needs a TaskManager restart.
            log.warning("dbgd-step runs modules of an earlier job on this TaskManager (%s no longer exists); "
                        "restart the TaskManager to run new drnflow code", __file__)
        from pyflink.datastream.state import MapStateDescriptor, ValueStateDescriptor

        self.learner_state = runtime_context.get_state(ValueStateDescriptor("learner", Types.PICKLED_BYTE_ARRAY()))
        self.trigger_state = runtime_context.get_state(ValueStateDescriptor("triggers", Types.PICKLED_BYTE_ARRAY()))
        self.pending = runtime_context.get_map_state(
            MapStateDescriptor("pending", Types.LONG(), Types.PICKLED_BYTE_ARRAY())
        )
        self.dbgd = self.cfg.dbgd
        self.trigger_config = self.cfg.triggers
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
        learner, out = self._learner(model_id, created_at=due[0] + self.cfg.window_ms)
        yield from out
        schedule = TriggerSchedule(self.trigger_config)
        held = self.trigger_state.value()
        if held is not None:
            schedule.restore(model_id, held)
        key = model_id.encode("utf-8")
        for ws in due:
            rows = self.pending.get(ws)
            self.pending.remove(ws)
            last_end = schedule.last_window_end(model_id)
            late = last_end is not None and ws + self.cfg.window_ms <= last_end
            # Old event times after a restore (watermarks are not checkpointed): decided STALE, not fatal.
            result = (learner.on_late_window(rows, f"window [{ws}, {ws + self.cfg.window_ms}) arrived after the "
                                                   f"window ending {last_end} was decided")
                      if late else learner.on_window(rows))
            for win_rate in result.win_rates:
                self.metrics.record(win_rate)
                yield _out(self.topic_win_rates, key, serde.encode("WinRate", win_rate))
            if result.weights is not None:  # a MINOR, or the ROLLBACK of a version that lost its probation
                yield _out(self.topic_weights, key, serde.encode("ModelWeights", result.weights))
            if late:
                continue
            ranges = []
            for r in rows:
                ranges += parse_ranges(r["impression_offsets"], self.topic_impressions)
                ranges += parse_ranges(r["click_offsets"], self.topic_clicks)
            trigger = schedule.on_window_end(model_id, ws, ws + self.cfg.window_ms, learner.minor_count,
                                             _version(learner), ranges)
            if trigger is not None:
                yield _out(self.topic_triggers, key, serde.encode("MajorUpdateTrigger", trigger))
        self.learner_state.update(learner.snapshot())
        self.trigger_state.update(schedule.snapshot(model_id))

    # --- the learner -------------------------------------------------------------------------------
    def _learner(self, model_id: str, created_at: int, seed_model: bool = True) -> tuple[Any, list[Any]]:
        """The model's learner from state; on first sight, from the latest MAJOR read at start-up, else
        (with `seed_model`) a new MAJOR built from the seed, published so the ranker and replays know it."""
        learner = window_learner(model_id, self.dbgd, self.cfg.pdgd)
        held = self.learner_state.value()
        if held is not None:
            try:
                learner.restore(held)
                return learner, []
            except ValueError as e:  # e.g. resumed from a savepoint of the other learner (--learner changed)
                log.warning("model %s: the learner's state cannot be restored (%s); starting again from the "
                            "newest version model-weights had when the job started", model_id, e)
                learner = window_learner(model_id, self.dbgd, self.cfg.pdgd)
        out = []
        major = self.initial_major.get(model_id)
        latest = self.initial_latest.get(model_id)
        if major is not None:
            parent = self.initial_parent.get(model_id)
            learner.rebase(serde.decode("ModelWeights", major),
                           parent=None if parent is None else serde.decode("ModelWeights", parent))
        if latest is not None:
            served = serde.decode("ModelWeights", latest)
            if learner.version is None or int(served["version"]) > learner.version:
                try:  # MINORs of an earlier job after the MAJOR: the rankers serve the newest of them
                    learner.resume_from(served)
                    log.info("model %s: starting from v%s (%s), the version on model-weights the rankers serve",
                             model_id, served["version"], served["kind"])
                except ValueError as e:
                    log.warning("model %s: cannot start from v%s: %s", model_id, served["version"], e)
        if learner.version is None and seed_model:
            initial = self.cfg.initial_model
            record = seeded_initial_record(model_id, initial.state_dim, initial.action_dim, initial.seed,
                                           version=self.max_version.get(model_id, -1) + 1, created_at=created_at,
                                           explore=initial.explore)
            if record is not None:
                learner.rebase(record)
                out.append(_out(self.topic_weights, model_id.encode("utf-8"), serde.encode("ModelWeights", record)))
        # Versions already on the topic (e.g. MINORs of an earlier run) are never reused.
        learner.reserve_versions_through(self.max_version.get(model_id, -1))
        return learner, out


def _version(learner: Any) -> int:
    return -1 if learner.version is None else int(learner.version)


def _out(topic: str, key: bytes, value: bytes) -> Any:
    from pyflink.common import Row

    return Row(topic, key, value)
