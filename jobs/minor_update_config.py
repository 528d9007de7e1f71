"""Typed, validated configuration of the minor-update job; the same fields make its command line.

Durations are written the way Flink writes them ("60 s", "30 min") and kept as int milliseconds.
"""

from __future__ import annotations

import argparse
import math
import re
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from models.dbgd import DbgdConfig
from models.pdgd_learner import PdgdConfig
from models.perturbation import DEFAULT_EXPLORE, ExploreParams, Perturbation
from models.triggers import TriggerConfig
from operators.dbgd_step import DbgdStepConfig, InitialModel
from operators.flinkenv import STATE_BACKENDS
from operators.kafka_io.addressing import (
    add_bootstrap_argument,
    add_prefix_argument,
    default_bootstrap,
    default_prefix,
)
from operators.model_weights_log import WeightsLog
from operators.paths import state_dir
from schemas.durations import duration_ms, format_duration_ms
from schemas.topics import TopicNames

_JOB_NAME = re.compile(r"[A-Za-z0-9._-]{1,100}")
#: The job's learners (--learner): MGD is DBGD's learner on multileaved rows.
LEARNERS = ("dbgd", "mgd", "pdgd")


@dataclass(frozen=True)
class FaultInjection:
    """Test-only knobs (not on the command line): fail the attribution input `failures` times, each after
    a completed checkpoint and `fail_after_impressions` impressions since the (re)start, and/or slow
    impressions down until the last failure."""

    fail_after_impressions: int = -1
    marker: str = ""
    throttle_us: int = 0
    failures: int = 1

    def __post_init__(self) -> None:
        if self.fail_after_impressions >= 0 and not self.marker:
            raise ValueError("FaultInjection.fail_after_impressions needs a marker file path (fails once)")
        if self.failures < 1:
            raise ValueError(f"FaultInjection.failures must be >= 1, got {self.failures}")
        if self.throttle_us < 0:
            raise ValueError(f"FaultInjection.throttle_us must be >= 0, got {self.throttle_us}")


#: 24 h: a click that late for a shown item is OUTSIDE_WINDOW (§4), not UNKNOWN_REQUEST; state kept per
#: request after its outcome is only its event time and item ids, so a day of requests stays cheap.
DEFAULT_CLICK_HORIZON_MS = 24 * 3_600_000


@dataclass(frozen=True)
class MinorUpdateConfig:
    """Everything the minor-update job (design.md §4-§5) can be told."""

    bootstrap: str = field(default_factory=default_bootstrap)
    topic_prefix: str = field(default_factory=default_prefix)
    #: Read what is in the topics now and stop by itself.
    bounded: bool = False
    window: int | str = "60 s"
    attribution_window: int | str = "30 min"
    #: State retention: how long a request stays known after its impression; beyond it a click is
    #: UNKNOWN_REQUEST (None = DEFAULT_CLICK_HORIZON_MS, or the attribution window if that is longer).
    click_horizon: int | str | None = None
    out_of_orderness: int | str = "5 s"
    #: A partition with no records for this long stops holding the watermark back (0 = off).
    idleness: int | str = "30 s"
    #: An event_time further than this ahead of its record's Kafka timestamp is an OUT_OF_RANGE dead
    #: letter and never moves the watermark (0 = no bound).
    max_event_time_skew: int | str = "6 h"
    #: Watermark alignment of the impressions and clicks sources (unbounded jobs): the one ahead of the other by
    #: more than this pauses, so a job behind its topics holds about this much event time of early records in
    #: state (0 = off). Bounded jobs read without it (MinorUpdatePipeline.ALIGNMENT_GROUP says why). 5 min, not
    #: less: Flink 2.2 reads a backlog at most a drift of event time per 100 ms, which binds on sparse event time.
    max_source_drift: int | str = "5 min"
    #: Explore parameters: None = those of the served version's record (DEFAULT_EXPLORE for a record
    #: without them). Given, they pin the job: a served version that explores otherwise is refused.
    alpha: float | None = None
    #: dbgd (DRN's; also MGD's multileaved rows, credited per team) or pdgd (Plackett–Luce sampled lists).
    learner: str = "dbgd"
    eta: float = 0.5
    #: PDGD's step size per window (models/pdgd_learner.py).
    learning_rate: float = 0.1
    perturbation: str | None = None
    #: None = cover one attribution window of windows (models.dbgd.default_max_staleness).
    max_staleness: int | None = None
    #: ACCEPT also needs this many decided impressions (explore + current wins); 0 = off (DRN).
    min_decided: int = 0
    #: ACCEPT also needs a one-sided binomial test at this confidence; None = off (DRN).
    confidence: float | None = None
    #: Seed of the initial model used for a model_id that has no MAJOR version yet.
    seed: int = 0
    initial_state_dim: int = 16
    initial_action_dim: int = 16
    #: Major-update triggers: every this much event time (None = off) and/or after N minor updates.
    trigger_every: int | str | None = "1 h"
    trigger_every_minor: int | None = None
    checkpoint_interval: int | str = "2 s"
    checkpoint_dir: str | None = None
    #: Where keyed state lives (operators/flinkenv.STATE_BACKENDS): `hashmap` on the JVM heap (fastest; the
    #: heap must hold every request of the click horizon), or `rocksdb` on local disk with incremental
    #: checkpoints (memory bounded; for a horizon's worth of requests larger than the heap).
    state_backend: str = "hashmap"
    parallelism: int = 1
    job_name: str = "drnflow-minor-update"
    #: Kafka's broker caps transactions at 15 min by default; the sink must stay below it.
    transaction_timeout: int | str = "10 min"
    fault: FaultInjection = field(default_factory=FaultInjection)
    #: Benchmark probes write first/last record times here (None = no probes).
    probe_dir: str | None = None

    def __post_init__(self) -> None:
        for name in ("window", "attribution_window", "out_of_orderness", "idleness", "checkpoint_interval",
                     "transaction_timeout", "max_event_time_skew", "max_source_drift"):
            try:
                object.__setattr__(self, name, duration_ms(getattr(self, name)))
            except ValueError as e:
                raise ValueError(f"MinorUpdateConfig.{name}: {e}") from None
        for name in ("click_horizon", "trigger_every"):
            if getattr(self, name) is not None:
                try:
                    object.__setattr__(self, name, duration_ms(getattr(self, name)))
                except ValueError as e:
                    raise ValueError(f"MinorUpdateConfig.{name}: {e}") from None
        if self.window_ms <= 0:
            raise ValueError("MinorUpdateConfig.window must be > 0, e.g. '60 s'")
        if self.click_horizon_ms < self.attribution_window_ms:
            raise ValueError(
                f"MinorUpdateConfig.click_horizon ({format_duration_ms(self.click_horizon_ms)}) must be >= "
                f"the attribution window ({format_duration_ms(self.attribution_window_ms)})"
            )
        if self.checkpoint_interval_ms < 10:
            raise ValueError("MinorUpdateConfig.checkpoint_interval must be >= 10 ms (checkpointing is required)")
        if not 1_000 <= self.transaction_timeout_ms <= 15 * 60_000:
            raise ValueError("MinorUpdateConfig.transaction_timeout must be in [1 s, 15 min] (the broker's cap)")
        if self.transaction_timeout_ms <= self.checkpoint_interval_ms:
            raise ValueError("MinorUpdateConfig.transaction_timeout must exceed checkpoint_interval")
        if not self.bootstrap or " " in self.bootstrap:
            raise ValueError(f"MinorUpdateConfig.bootstrap must be host:port[,host:port], got {self.bootstrap!r}")
        TopicNames(self.topic_prefix)  # validates the prefix
        if not _JOB_NAME.fullmatch(self.job_name):
            raise ValueError(f"MinorUpdateConfig.job_name must match {_JOB_NAME.pattern}, got {self.job_name!r}")
        if not 1 <= self.parallelism <= 64:
            raise ValueError(f"MinorUpdateConfig.parallelism must be in 1..64, got {self.parallelism}")
        if self.seed < 0:
            raise ValueError(f"MinorUpdateConfig.seed must be >= 0, got {self.seed}")
        if self.initial_state_dim < 1 or self.initial_action_dim < 1:
            raise ValueError("MinorUpdateConfig.initial_state_dim/initial_action_dim must be >= 1")
        if not ((self.alpha is None or math.isfinite(self.alpha)) and math.isfinite(self.eta)):
            raise ValueError("MinorUpdateConfig.alpha and eta must be finite")
        if self.state_backend not in STATE_BACKENDS:
            raise ValueError(f"--state-backend must be one of {', '.join(STATE_BACKENDS)}, got {self.state_backend!r}")
        if self.learner not in LEARNERS:
            raise ValueError(f"--learner must be one of {', '.join(LEARNERS)}, got {self.learner!r}")
        self.dbgd_config()  # alpha, eta, perturbation, max_staleness: DbgdConfig's own checks
        self.pdgd_config()
        self.trigger_config()

    # Durations in ms (the fields hold ints after __post_init__; these give mypy the int type).
    @property
    def window_ms(self) -> int:
        return int(self.window)

    @property
    def attribution_window_ms(self) -> int:
        return int(self.attribution_window)

    @property
    def click_horizon_ms(self) -> int:
        if self.click_horizon is None:
            return max(DEFAULT_CLICK_HORIZON_MS, self.attribution_window_ms)
        return int(self.click_horizon)

    @property
    def out_of_orderness_ms(self) -> int:
        return int(self.out_of_orderness)

    @property
    def idleness_ms(self) -> int:
        return int(self.idleness)

    @property
    def max_event_time_skew_ms(self) -> int:
        return int(self.max_event_time_skew)

    @property
    def max_source_drift_ms(self) -> int:
        return int(self.max_source_drift)

    @property
    def checkpoint_interval_ms(self) -> int:
        return int(self.checkpoint_interval)

    @property
    def transaction_timeout_ms(self) -> int:
        return int(self.transaction_timeout)

    @property
    def topics(self) -> TopicNames:
        return TopicNames(self.topic_prefix)

    @property
    def explore_pinned(self) -> bool:
        """True when --alpha or --perturbation was given: the job then refuses other explore parameters."""
        return self.alpha is not None or self.perturbation is not None

    def explore(self) -> ExploreParams:
        """The explore parameters given, completed with DEFAULT_EXPLORE."""
        return ExploreParams(
            DEFAULT_EXPLORE.alpha if self.alpha is None else self.alpha,
            DEFAULT_EXPLORE.perturbation if self.perturbation is None else Perturbation(self.perturbation),
        )

    def refuse_explore_mismatch(self, weights_log: WeightsLog) -> None:
        """ValueError (one sentence) when --alpha/--perturbation disagree with a served version's record:
        the learner would rebuild another ΔW than the ranker served, and DBGD would move the wrong way."""
        if not self.explore_pinned:
            return
        mine = self.explore()
        for model_id, record in sorted(weights_log.latest.items()):
            theirs = ExploreParams.read_from(str(record.get("architecture") or ""))
            if theirs is not None and theirs != mine:
                raise ValueError(
                    f"model {model_id} v{record['version']} on {self.topics.model_weights} explores with "
                    f"{theirs.describe()}, but this job was started with {mine.describe()}; drop --alpha/"
                    "--perturbation to follow the served version, or publish a version with these"
                )

    def step_config(self) -> DbgdStepConfig:
        """What the per-window DBGD step (operators/dbgd_step.py) needs."""
        return DbgdStepConfig(
            dbgd=self.dbgd_config(), triggers=self.trigger_config(), topics=self.topics,
            window_ms=self.window_ms, attribution_window_ms=self.attribution_window_ms,
            initial_model=InitialModel(self.seed, self.initial_state_dim, self.initial_action_dim, self.explore()),
            pdgd=self.pdgd_config() if self.learner == "pdgd" else None,
        )

    def dbgd_config(self) -> DbgdConfig:
        explore = self.explore()
        overrides: dict[str, Any] = {"alpha": explore.alpha, "eta": self.eta,
                                     "perturbation": explore.perturbation.value, "explore_pinned": self.explore_pinned,
                                     "min_decided": self.min_decided, "confidence": self.confidence}
        if self.max_staleness is not None:
            overrides["max_staleness"] = self.max_staleness
        return DbgdConfig.for_windows(self.window_ms, self.attribution_window_ms, **overrides)

    def pdgd_config(self) -> PdgdConfig:
        """PDGD's settings (--learner pdgd): --learning-rate, and --max-staleness as DBGD takes it."""
        return PdgdConfig(learning_rate=self.learning_rate, max_staleness=self.dbgd_config().max_staleness)

    def trigger_config(self) -> TriggerConfig:
        names = self.topics
        return TriggerConfig(
            every_ms=None if self.trigger_every is None else int(self.trigger_every),
            every_minor=self.trigger_every_minor,
            impressions_topic=names.impressions,
            clicks_topic=names.clicks,
        )

    def checkpoint_path(self) -> Path | str:
        """--checkpoint-dir: a local folder (default under the state dir) or a URI such as s3://bucket/path."""
        if self.checkpoint_dir:
            return self.checkpoint_dir if "://" in self.checkpoint_dir else Path(self.checkpoint_dir).resolve()
        return state_dir() / "checkpoints" / f"{self.job_name}-{self.topic_prefix or 'default'}"

    @property
    def transactional_id_prefix(self) -> str:
        return f"{self.job_name}-{self.topic_prefix}"

    def _alignment(self) -> str:
        if self.bounded or self.max_source_drift_ms == 0:
            return "sources not aligned"
        return f"sources aligned within {format_duration_ms(self.max_source_drift_ms)}"

    def describe(self) -> str:
        """One line with the settings that shape results (for logs)."""
        f = format_duration_ms
        return (
            f"learner {self.learner}"
            f"{f' (learning rate {self.learning_rate})' if self.learner == 'pdgd' else ''}, "
            f"window {f(self.window_ms)}, attribution window {f(self.attribution_window_ms)}, "
            f"out-of-orderness {f(self.out_of_orderness_ms)}, explore {self.explore().describe()}"
            f"{' (pinned)' if self.explore_pinned else ' (unless the served version says otherwise)'}, eta {self.eta}, "
            f"seed {self.seed}, {'bounded' if self.bounded else 'unbounded'}, {self.state_backend} state, "
            f"{self._alignment()}, "
            f"topics '{self.topic_prefix}*'"
        )


#: (flag, field, type, help) of the command line; every flag maps to one config field.
_FLAGS: tuple[tuple[str, str, Any, str], ...] = (
    ("--window", "window", str, "tumbling window on impression event time, e.g. '60 s', '30 min'"),
    ("--attribution-window", "attribution_window", str, "how long after an impression a click counts"),
    ("--click-horizon", "click_horizon", str,
     "state retention: how long a request stays known after its impression; beyond it a click is "
     "UNKNOWN_REQUEST (default 24 h)"),
    ("--out-of-orderness", "out_of_orderness", str, "bounded out-of-orderness of the watermarks"),
    ("--idleness", "idleness", str, "idle-partition timeout ('0 ms' = off)"),
    ("--max-event-time-skew", "max_event_time_skew", str,
     "an event_time further ahead of its record's Kafka timestamp is an OUT_OF_RANGE dead letter and never "
     "moves the watermark ('0 ms' = no bound)"),
    ("--max-source-drift", "max_source_drift", str,
     "watermark alignment: the impressions or clicks source whose watermark is more than this ahead of the "
     "other's pauses until the other catches up, so a job behind its topics holds little in state; unbounded "
     "jobs only ('0 ms' = off)"),
    ("--alpha", "alpha", float,
     "exploration scale of ΔW; pins the job: a served version that explores otherwise is refused "
     "(default: the served version's, 0.1 for a version that does not say)"),
    ("--learner", "learner", str, "dbgd (DRN's), mgd (the same learner, for multileaved lists credited per team) "
     "or pdgd (the ranker samples Plackett–Luce lists; one PDGD gradient step per window); default: dbgd"),
    ("--eta", "eta", float, "DBGD step size"),
    ("--learning-rate", "learning_rate", float, "PDGD step size per window (with --learner pdgd)"),
    ("--perturbation", "perturbation", str, "explore direction: " + ", ".join(p.value for p in Perturbation)
     + "; pins the job like --alpha (default: the served version's)"),
    ("--max-staleness", "max_staleness", int, "versions a row may lag and still move the weights (default: one "
     "attribution window of windows)"),
    ("--min-decided", "min_decided", int, "ACCEPT also needs this many decided impressions (0 = off)"),
    ("--confidence", "confidence", float,
     "ACCEPT also needs a one-sided binomial test of explore vs current wins at this confidence (off by default)"),
    ("--seed", "seed", int, "seed of the initial model for a model_id without a MAJOR version"),
    ("--trigger-every", "trigger_every", str, "major-update trigger period in event time ('none' = off)"),
    ("--trigger-every-minor", "trigger_every_minor", int, "trigger after this many minor updates"),
    ("--checkpoint-interval", "checkpoint_interval", str, "checkpoint (and output commit) interval"),
    ("--checkpoint-dir", "checkpoint_dir", str,
     "checkpoint folder, or a URI every TaskManager reaches on a real cluster (s3://bucket/path, hdfs://nn/path; "
     "the default is a folder under the state dir)"),
    ("--state-backend", "state_backend", str,
     "keyed state: hashmap (on the JVM heap, fastest; the TaskManager heap must hold every request of the click "
     "horizon) or rocksdb (local disk, incremental checkpoints, memory bounded)"),
    ("--parallelism", "parallelism", int, "Flink parallelism"),
    ("--job-name", "job_name", str, "Flink job name (also the transactional id prefix)"),
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the job's flags; defaults stay None so the dataclass defaults are the only defaults."""
    defaults = {f.name: f.default for f in fields(MinorUpdateConfig)}
    parser.add_argument("--bounded", action="store_true", help="read what is in the topics now, then stop")
    add_bootstrap_argument(parser, default=None)
    add_prefix_argument(parser, default=None)
    for flag, name, typ, text in _FLAGS:
        # A help text that says its default itself (e.g. "default: the served version's") keeps its own words.
        shown = text if "default" in text else f"{text} (default: {defaults[name]})"
        parser.add_argument(flag, dest=name, type=typ, default=None, help=shown)


def from_args(args: argparse.Namespace, base: MinorUpdateConfig | None = None) -> MinorUpdateConfig:
    """A config from parsed flags (unset flags keep `base`'s values); raises ValueError on bad values."""
    cfg = base if base is not None else MinorUpdateConfig()
    changes: dict[str, Any] = {}
    for name in ("bootstrap", "topic_prefix", *(f[1] for f in _FLAGS)):
        value = getattr(args, name, None)
        if value is not None:
            changes[name] = None if name == "trigger_every" and str(value).lower() == "none" else value
    if getattr(args, "bounded", False):
        changes["bounded"] = True
    # Durations already parsed to ms in `cfg` are ints; re-validation accepts them as they are.
    return replace(cfg, **changes)
