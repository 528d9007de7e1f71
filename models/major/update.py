"""One major update, without Kafka: logged range -> transitions -> DDQN from the base weights -> offline
table against LR / FM / the base -> quality gate. jobs/major_update.py reads the range, publishes.

Held-out range: the last `holdout_fraction` of the range's impressions (by event time) are never
trained on; they make the offline table and the gate. The candidate that is evaluated is the one that
is published (it is trained on the rest of the range).

Outcomes (`UpdateOutcome.status`): PUBLISH (with `refused_on_probation`, also a candidate the gate would
refuse: on probation, the online test decides); REJECTED (the gate: worse than the base by more than the
margin); EMPTY (no usable data in the range); CORRUPT (too many undecodable records); MISMATCH (the
base network cannot take the logged features). Everything but PUBLISH publishes nothing; the reason is
logged and kept in the report.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.baselines import BaselineConfig, train_baseline
from models.drn import DrnConfig, DrnQNetwork, network_from_flat
from models.major.ddqn import DdqnConfig, DdqnTrainer
from models.major.offline_eval import (
    OfflineMetrics,
    Scorer,
    logged_scorer,
    markdown_table,
    ndcg_ips_per_impression,
    network_scorer,
    offline_table,
    position_propensity,
    random_scorer,
    score_rows,
)
from models.perturbation import ExploreParams
from models.probation import ProbationParams
from models.transitions import EmptyRange, TransitionConfig, TransitionSet, build_transitions
from models.weights import Layout, WeightsError

log = logging.getLogger(__name__)

GATE_METRICS = ("ctr", "precision_at_5", "ndcg", "ndcg_ips")
PUBLISH, REJECTED, EMPTY, CORRUPT, MISMATCH = "PUBLISH", "REJECTED", "EMPTY", "CORRUPT", "MISMATCH"
CANDIDATE, BASE = "DDQN (candidate)", "DRN base"


@dataclass(frozen=True)
class MajorUpdateConfig:
    """Everything one major update needs besides its data and base weights."""

    transitions: TransitionConfig = field(default_factory=TransitionConfig)
    ddqn: DdqnConfig = field(default_factory=DdqnConfig)
    baselines: BaselineConfig = field(default_factory=BaselineConfig)
    holdout_fraction: float = 0.2
    gate_metric: str = "ndcg_ips"
    gate_margin: float = 0.01
    #: With ndcg_ips: refuse the candidate only when it is worse than the base by more than the margin with
    #: this one-sided confidence, paired over the held-out impressions (the held-out lists were chosen by
    #: the base, which already tilts the comparison its way; the benefit of the doubt goes to the
    #: candidate). 0: refuse whenever the point estimate is worse by more than the margin.
    gate_confidence: float = 0.95
    #: Publish the candidate on probation (models/probation.py): served against its base for this many
    #: windows and rolled back by the minor-update job when it wins less than its share. None: off.
    probation: ProbationParams | None = None
    #: With probation: a candidate the offline gate refuses is published on probation all the same, so the
    #: online interleaving against its base decides (the offline estimate leans towards the policy that
    #: logged the held-out lists; the online test does not). False: a refused candidate is not published.
    refused_on_probation: bool = False
    max_corrupt_fraction: float = 0.01
    run_baselines: bool = True
    #: Sizes of a network built from scratch (only when the model has no weights on the topic yet).
    state_hidden: tuple[int, ...] = (128, 64)
    action_hidden: tuple[int, ...] = (128, 64)

    def __post_init__(self) -> None:
        if not 0 < self.holdout_fraction < 1:
            raise ValueError(f"MajorUpdateConfig.holdout_fraction must be in (0, 1), got {self.holdout_fraction}")
        if self.gate_metric not in GATE_METRICS:
            raise ValueError(f"MajorUpdateConfig.gate_metric must be one of {GATE_METRICS}, got {self.gate_metric!r}")
        if not (np.isfinite(self.gate_margin) and self.gate_margin >= 0):
            raise ValueError(f"MajorUpdateConfig.gate_margin must be finite and >= 0, got {self.gate_margin}")
        if not 0 <= self.gate_confidence < 1:
            raise ValueError(f"MajorUpdateConfig.gate_confidence must be in [0, 1), got {self.gate_confidence}")
        if self.refused_on_probation and self.probation is None:
            raise ValueError("MajorUpdateConfig.refused_on_probation needs probation: only an online test can "
                             "overrule the offline gate")
        if not 0 <= self.max_corrupt_fraction <= 1:
            raise ValueError(
                f"MajorUpdateConfig.max_corrupt_fraction must be in [0, 1], got {self.max_corrupt_fraction}"
            )


@dataclass(frozen=True)
class CorruptRecord:
    """A record of the range that could not be decoded (counted, reported; never trained on)."""

    topic: str
    partition: int
    offset: int
    reason: str


@dataclass
class LogRange:
    """The decoded records of one range, as the reader found them."""

    model_id: str
    start_ms: int
    end_ms: int
    impressions: list[dict[str, Any]]
    clicks: list[dict[str, Any]]
    corrupt: list[CorruptRecord] = field(default_factory=list)
    read_stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class BaseModel:
    """The version the update starts from and is compared against."""

    version: int
    flat: npt.NDArray[np.float32]
    layout: Layout
    #: The base record's architecture: its explore parameters (α, ΔW kind) carry over to the candidate, so
    #: rankers and the job keep exploring the way they did.
    architecture: str = ""

    def network(self) -> DrnQNetwork:
        return network_from_flat(self.flat, self.layout)


@dataclass
class UpdateOutcome:
    status: str
    reason: str
    report: dict[str, Any]
    #: The trained candidate: published when `publish`, kept but not published when REJECTED.
    network: DrnQNetwork | None = None
    architecture: str = ""

    @property
    def publish(self) -> bool:
        return self.status == PUBLISH


def _stop(status: str, reason: str, report: dict[str, Any], network: DrnQNetwork | None = None) -> UpdateOutcome:
    log.warning("major update of %s publishes nothing: %s", report.get("model_id"), reason)
    report.update(status=status, reason=reason)
    return UpdateOutcome(status, reason, report, network)


def run_update(
    data_log: LogRange,
    base: BaseModel | None,
    config: MajorUpdateConfig | None = None,
    checkpoint_dir: Path | None = None,
    progress: bool = False,
) -> UpdateOutcome:
    """Train, evaluate and gate one major update (see the module docstring)."""
    cfg = config or MajorUpdateConfig()
    report: dict[str, Any] = {
        "model_id": data_log.model_id,
        "range": {"event_time_start": data_log.start_ms, "event_time_end": data_log.end_ms},
        "base_version": None if base is None else base.version,
        "config": _jsonable(asdict(cfg)),
        "read": dict(data_log.read_stats),
    }
    decoded = len(data_log.impressions) + len(data_log.clicks)
    bad = len(data_log.corrupt)
    report["input"] = {
        "impressions_read": len(data_log.impressions),
        "clicks_read": len(data_log.clicks),
        "corrupt_records": bad,
        "corrupt_samples": [asdict(c) for c in data_log.corrupt[:10]],
    }
    if bad and bad > cfg.max_corrupt_fraction * (decoded + bad):
        return _stop(CORRUPT, f"{bad} of {decoded + bad} records in the range are corrupt "
                     f"(first: {_where(data_log.corrupt[0])}); more than the allowed "
                     f"{cfg.max_corrupt_fraction:.1%}", report)
    try:
        data = build_transitions(data_log.impressions, data_log.clicks, data_log.end_ms, cfg.transitions)
    except EmptyRange as e:
        return _stop(EMPTY, f"range [{data_log.start_ms}, {data_log.end_ms}) of model "
                     f"{data_log.model_id!r}: {e}", report)
    train_rows, test_rows = holdout_split(data, cfg.holdout_fraction)
    report["input"].update(
        impressions_used=data.n_impressions, transitions=data.n_transitions,
        skipped=dict(sorted(data.skipped.items())), users=len(set(data.user_ids)),
        clicks_attributed=int(data.clicks.sum()),
        train_impressions=int(train_rows.size), test_impressions=int(test_rows.size),
        holdout_starts_at=int(data.event_time[test_rows[0]]) if test_rows.size else None,
        transitions_bytes=data.nbytes(),
    )
    if train_rows.size == 0 or test_rows.size == 0 or not data.clicks[test_rows].any():
        return _stop(EMPTY, f"range of model {data_log.model_id!r} holds {data.n_impressions} usable "
                     f"impressions, too few to train and hold out {cfg.holdout_fraction:.0%} with a click",
                     report)
    try:
        network = _start_network(base, data, cfg)
    except (WeightsError, ValueError) as e:
        return _stop(MISMATCH, str(e), report)
    trainer = DdqnTrainer(data, train_rows, network, cfg.ddqn)
    ckpt = None if checkpoint_dir is None else checkpoint_dir / "ddqn.pt"
    resumed_at = 0
    if ckpt is not None and ckpt.exists():
        trainer.load(ckpt)
        resumed_at = trainer.step
        log.info("resuming DDQN training of %s from step %d (%s)", data_log.model_id, resumed_at, ckpt)
    t0 = time.perf_counter()
    trainer.run(checkpoint=ckpt, progress=progress)
    took = time.perf_counter() - t0
    steps_run = trainer.step - resumed_at
    report["training"] = {
        "device": str(trainer.device), "steps": trainer.step, "resumed_at_step": resumed_at,
        "train_transitions": trainer.n_transitions, "last_loss": trainer.last_loss,
        "seconds": took,
        "transitions_per_s": steps_run * cfg.ddqn.batch_size / took if steps_run and took > 0 else None,
        "warm_start": base is not None,
    }
    candidate = trainer.online.to("cpu").eval()
    scorers: dict[str, Scorer] = {"logged order": logged_scorer(), "random": random_scorer(cfg.ddqn.seed)}
    if cfg.run_baselines:
        for kind, name in (("lr", "LR"), ("fm", "FM")):
            model = train_baseline(kind, data, train_rows, cfg.baselines)
            scorers[name] = _baseline_scorer(model)
    if base is not None:
        scorers[BASE] = network_scorer(base.network())
    scorers[CANDIDATE] = network_scorer(candidate)
    propensity = position_propensity(data.clicks[train_rows], data.mask[train_rows])
    report["position_propensity"] = [round(float(x), 4) for x in propensity]
    table = offline_table(data, test_rows, scorers, propensity=propensity)
    report["offline"] = [m.to_json() for m in table]
    report["offline_markdown"] = markdown_table(table)
    by_name = {m.method: m for m in table}
    arch = candidate.config.to_json()
    explore = None if base is None else ExploreParams.read_from(base.architecture)
    if explore is not None:
        arch = explore.written_into(arch)
    if base is not None and cfg.probation is not None:  # a first network has no parent to be judged against
        arch = cfg.probation.written_into(arch)
    paired = None
    if base is not None and cfg.gate_metric == "ndcg_ips" and cfg.gate_confidence > 0:
        clicks, mask = data.clicks[test_rows], data.mask[test_rows]
        paired = (ndcg_ips_per_impression(score_rows(data, test_rows, scorers[CANDIDATE]), clicks, mask, propensity)
                  - ndcg_ips_per_impression(score_rows(data, test_rows, scorers[BASE]), clicks, mask, propensity))
    gate = _gate(by_name.get(BASE), by_name[CANDIDATE], cfg, paired)
    report["gate"] = gate
    reason = gate["reason"]
    if not gate["passed"]:
        if not (cfg.refused_on_probation and cfg.probation is not None and base is not None):
            return _stop(REJECTED, reason, report, candidate)  # kept in the outcome, to be judged
        gate["overruled_by_probation"] = True
        reason = (f"the offline gate would refuse it ({reason}); published on probation against "
                  f"v{base.version} ({cfg.probation.describe()}): the online test decides")
    report.update(status=PUBLISH, reason=reason)
    return UpdateOutcome(PUBLISH, reason, report, candidate, arch)


def holdout_split(data: TransitionSet, fraction: float) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
    """Train rows before, held-out rows from the event time that leaves `fraction` of impressions."""
    n = data.n_impressions
    cut_row = min(n - 1, int(np.floor(n * (1.0 - fraction))))
    if n < 2:
        return np.arange(0, dtype=np.int64), np.arange(n, dtype=np.int64)
    return data.split_at(int(data.event_time[cut_row]))


def _start_network(base: BaseModel | None, data: TransitionSet, cfg: MajorUpdateConfig) -> DrnQNetwork:
    if base is None:
        return DrnQNetwork(DrnConfig(data.state_dim, data.action_dim, cfg.state_hidden, cfg.action_hidden,
                                     seed=cfg.ddqn.seed))
    arch = DrnConfig.from_layout(base.layout)
    if (arch.state_dim, arch.action_dim) != (data.state_dim, data.action_dim):
        raise ValueError(
            f"base v{base.version} takes (state, action) dims ({arch.state_dim}, {arch.action_dim}), the "
            f"logged features are ({data.state_dim}, {data.action_dim})"
        )
    return base.network()


def _gate(base: OfflineMetrics | None, cand: OfflineMetrics, cfg: MajorUpdateConfig,
          paired: npt.NDArray[np.float64] | None = None) -> dict[str, Any]:
    """Pass or refuse the candidate. `paired`: candidate - base per held-out impression (ndcg_ips); the
    candidate is refused when the upper one-sided `gate_confidence` bound of its mean is below -margin."""
    metric, margin = cfg.gate_metric, cfg.gate_margin
    c = float(getattr(cand, metric))
    if base is None:
        return {"metric": metric, "margin": margin, "base": None, "candidate": c, "passed": True,
                "reason": "no base version on the topic: nothing to compare against"}
    b = float(getattr(base, metric))
    out: dict[str, Any] = {"metric": metric, "margin": margin, "base": b, "candidate": c}
    if paired is not None and paired.size >= 2 and np.isfinite(paired).all():
        import statistics

        z = statistics.NormalDist().inv_cdf(cfg.gate_confidence)
        mean, se = float(paired.mean()), float(paired.std(ddof=1) / np.sqrt(paired.size))
        upper = mean + z * se
        passed = bool(np.isfinite(c) and upper >= -margin)
        out.update(confidence=cfg.gate_confidence, paired_mean=mean, paired_se=se, upper_bound=upper)
        why = (f"candidate {metric} {c:.4f} vs base {b:.4f}: paired difference {mean:+.4f}, upper "
               f"{cfg.gate_confidence:.0%} bound {upper:+.4f} over {paired.size} held-out impressions (margin "
               f"{margin:g}): " + ("not shown worse than the base" if passed else
                                   "worse than the base by more than the margin, with that confidence"))
    else:
        passed = bool(np.isfinite(c) and c >= b - margin)
        why = (f"candidate {metric} {c:.4f} vs base {b:.4f} (margin {margin:g}): "
               + ("within the margin or better" if passed else "worse than the base by more than the margin"))
    out.update(passed=passed, reason=why)
    return out


def _baseline_scorer(model: Any) -> Scorer:
    def score(states: npt.NDArray[np.float32], actions: npt.NDArray[np.float32],
              mask: npt.NDArray[np.bool_]) -> npt.NDArray[np.float32]:
        out: npt.NDArray[np.float32] = model.score(states, actions)
        return out

    return score


def _where(c: CorruptRecord) -> str:
    return f"{c.topic}[{c.partition}]@{c.offset}: {c.reason}"


def _jsonable(x: Any) -> Any:
    if isinstance(x, Mapping):
        return {str(k): _jsonable(v) for k, v in x.items()}
    if isinstance(x, Sequence) and not isinstance(x, str):
        return [_jsonable(v) for v in x]
    return x


def report_markdown(report: Mapping[str, Any]) -> str:
    """The human-readable run report."""
    lines = [f"# Major update of `{report.get('model_id')}`", ""]
    lines.append(f"- status: **{report.get('status')}**: {report.get('reason')}")
    rng = report.get("range", {})
    lines.append(f"- range: [{rng.get('event_time_start')}, {rng.get('event_time_end')}) event-time millis")
    lines.append(f"- base version: {report.get('base_version')}; published version: "
                 f"{report.get('published_version', '-')}")
    inp = report.get("input", {})
    lines.append(f"- input: {inp.get('impressions_read')} impressions, {inp.get('clicks_read')} clicks read, "
                 f"{inp.get('corrupt_records')} corrupt; {inp.get('transitions', '-')} transitions "
                 f"({inp.get('train_impressions', '-')} train / {inp.get('test_impressions', '-')} held-out "
                 f"impressions); skipped {inp.get('skipped', {})}")
    tr = report.get("training")
    if tr:
        tps = tr.get("transitions_per_s")
        lines.append(f"- training: {tr['steps']} steps on {tr['device']} in {tr['seconds']:.1f} s "
                     f"({'-' if tps is None else f'{tps:,.0f}'} transitions/s), last loss {tr['last_loss']:.4f}"
                     f", resumed at step {tr['resumed_at_step']}")
    if report.get("offline_markdown"):
        lines += ["", "## Offline evaluation (held-out range)", "", str(report["offline_markdown"])]
    gate = report.get("gate")
    if gate:
        lines += ["", f"Quality gate: {'passed' if gate['passed'] else 'FAILED'}: {gate['reason']}"]
    return "\n".join(lines) + "\n"
