"""PDGD on the DRN network, one MINOR per window (issue 14): the learner of a ranker that samples its lists.

The ranker (operators/pdgd_ranker.py) shows the top k of a Plackett–Luce sample over the served version's
Q/τ and logs, beside the shown items, `pdgd` = {temperature τ, log_rest}: log Σ e^{Q/τ} over the candidates
it did not show. That is all PDGD's debiasing weight ρ needs besides the shown items' scores, so the
learner never needs the unshown candidates' features (models/pdgd.py: `document_weights` over the shown
scores plus one never-placed pseudo-document of score `log_rest` gives exactly the same ρ as over all
candidates).

The learner sees what the DBGD learner sees, one window's count rows, and each row of a PDGD list carries
`pdgd_batch` (schemas/pdgd_batch.avsc): the window's impressions of that version with a counted click, as
logged, and the clicked positions. In the minor-update job the JVM attribution builds it; the reference and
the in-memory loop build it with `batch_bytes`. Per window the learner takes the samples of its current
version, in (event_time, request_id) order, recomputes the shown items' Q/τ with autograd (the version that
served them is the one it holds, so the scores are the sampling scores), sums PDGD's gradient over them and
takes one gradient-ascent step of `learning_rate`: the MINOR version. Rows of other versions are STALE, as
DBGD's are. A MAJOR or ROLLBACK is rebased on; there is no probation for PDGD.

WinRate rows keep their meaning for monitoring (impressions, clicked ones as current_wins, win_rate null:
PDGD has no explore list); the current version's row is ACCEPT when the window moved the weights, REJECT
when it did not (no usable click, or a step that was not finite).

torch (and models.drn, which needs it) is imported only by a PDGD learner's methods: the minor-update job
imports this module for every learner, and a DBGD job must run where torch is not installed (a packaged
job on a remote cluster, `drnflow package`).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from models import snapshots
from models.dbgd import (
    ACCEPT,
    REJECT,
    STALE,
    DbgdConfig,
    DbgdLearner,
    WindowResult,
    WindowRow,
    check_same_window,
    late_window,
    parse_window_row,
)
from models.pdgd import shown_document_weights
from models.weights import (
    FlatWeights,
    Layout,
    ParamSpec,
    flatten,
    make_model_weights_record,
    parse_model_weights_record,
)
from schemas import serde
from schemas.records import pdgd_batch_record

if TYPE_CHECKING:
    from models.drn import DrnQNetwork

log = logging.getLogger(__name__)

#: Key of the PDGD sampling facts in an impression (schemas/impression.avsc): {"temperature": τ, "log_rest"}.
PDGD_FIELD = "pdgd"
#: Key of a window row's PdgdBatch bytes (empty: no sample; DBGD rows never have one).
PDGD_BATCH_FIELD = "pdgd_batch"

_SNAPSHOT_MAGIC = b"DRNPDGD1"


@dataclass(frozen=True)
class PdgdConfig:
    """The step size of one window's update, how many versions back a sample may have been served and still
    count (the job's --max-staleness, as for DBGD), and the temperature of the ranker's Plackett–Luce
    sampling (the learner uses the temperature each impression logged, not this one)."""

    learning_rate: float = 0.01
    temperature: float = 1.0
    max_staleness: int = 10

    def __post_init__(self) -> None:
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"PDGD learning_rate must be finite and > 0, got {self.learning_rate!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"PDGD temperature must be finite and > 0, got {self.temperature!r}")
        if self.max_staleness < 0:
            raise ValueError(f"PDGD max_staleness must be >= 0, got {self.max_staleness}")


def window_learner(model_id: str, dbgd: DbgdConfig | None, pdgd: PdgdConfig | None) -> DbgdLearner | PdgdLearner:
    """The per-window learner of `model_id`: PDGD when it has a config (--learner pdgd), else DBGD."""
    return DbgdLearner(model_id, dbgd) if pdgd is None else PdgdLearner(model_id, pdgd)


def batch_bytes(samples: Iterable[tuple[int, int, Mapping[str, Any], Iterable[str]]]) -> bytes:
    """PdgdBatch bytes of (partition, offset, impression, credited item ids): the PDGD impressions with a
    credited click, each with its clicked positions (an item's first slot, as credit takes it); b"" if none."""
    kept = []
    for partition, offset, impression, items in samples:
        clicked = set(items)
        if impression.get(PDGD_FIELD) is None or not clicked:
            continue
        first: dict[str, int] = {}
        for pos, slot in enumerate(impression["slots"]):
            first.setdefault(str(slot["item_id"]), pos)
        positions = sorted(first[i] for i in clicked if i in first)
        if positions:
            kept.append((partition, offset, serde.encode("Impression", impression, check=False), positions))
    return serde.encode("PdgdBatch", pdgd_batch_record(kept)) if kept else b""


@dataclass
class _Sample:
    version: int
    state: npt.NDArray[np.float32]
    actions: npt.NDArray[np.float32]
    clicked: npt.NDArray[np.bool_]
    temperature: float
    log_rest: float


def _sample_of(raw: Mapping[str, Any], version: int) -> tuple[tuple[int, str], _Sample] | str:
    """One PdgdSample of a row of `version` as ((event_time, request_id), the step's tensors), or why it
    cannot be used."""
    try:
        imp = serde.decode("Impression", bytes(raw["impression"]))
    except serde.SerdeError as e:
        return f"undecodable impression: {e}"
    facts = imp.get(PDGD_FIELD)
    if facts is None:
        return "impression without pdgd sampling facts"
    tau, log_rest = float(facts["temperature"]), float(facts["log_rest"])
    if not (math.isfinite(tau) and tau > 0) or math.isnan(log_rest) or log_rest == math.inf:
        return f"pdgd facts temperature={tau!r}, log_rest={log_rest!r} are not a Plackett-Luce sample's"
    if int(imp["model_version"]) != version:
        return f"impression of v{imp['model_version']} in the row of v{version}"
    slots = imp["slots"]
    clicked = np.zeros(len(slots), dtype=bool)
    for pos in raw["clicked"]:
        if not 0 <= int(pos) < len(slots):
            return f"clicked position {pos} of a list of {len(slots)}"
        clicked[int(pos)] = True
    if not clicked.any():
        return "no clicked position"
    widths = {len(s["features"]) for s in slots}
    if len(widths) != 1:
        return f"slots with features of different lengths {sorted(widths)}"
    return (int(imp["event_time"]), str(imp["request_id"])), _Sample(
        version, np.asarray(imp["state_features"], dtype=np.float32),
        np.asarray([s["features"] for s in slots], dtype=np.float32), clicked, tau, log_rest)


class PdgdLearner:
    """Holds the current version and the recent ones that served; `on_window` steps on the window's samples
    and publishes a MINOR.

    A MINOR reaches the rankers only once its window is final (window + attribution window later), so most
    impressions were served by a version a few steps behind. Their samples still count, up to
    `max_staleness` versions back: ρ (the debiasing weight) from the scores of the version that sampled the
    list, which is what the list's probability depends on, and the preference and its gradient from the
    current network, which is what moves (models/pdgd.document_weights' `current`)."""

    def __init__(self, model_id: str, config: PdgdConfig | None = None) -> None:
        self.model_id = model_id
        self.config = config if config is not None else PdgdConfig()
        self._net: DrnQNetwork | None = None
        self._layout: Layout = []
        self._architecture = ""
        self._version: int | None = None
        self._next_version = 1
        self._minor_count = 0
        #: Flat weights of the versions samples may come from: the current one and up to max_staleness before.
        self._history: dict[int, FlatWeights] = {}

    @property
    def version(self) -> int | None:
        return self._version

    @property
    def next_version(self) -> int:
        return self._next_version

    @property
    def minor_count(self) -> int:
        """MINOR versions published since the last MAJOR (reset by `rebase` on a MAJOR)."""
        return self._minor_count

    def reserve_versions_through(self, version: int) -> None:
        """Never number a new version at or below `version` (one already on the model-weights topic)."""
        self._next_version = max(self._next_version, int(version) + 1)

    def rebase(self, record: Mapping[str, Any], parent: Mapping[str, Any] | None = None) -> bool:
        """Adopt a MAJOR or ROLLBACK (or a first MINOR) as the current version; False for an older one.
        Samples of the versions before it no longer count. `parent` is accepted for the DBGD learner's
        signature: PDGD has no probation."""
        from models.drn import network_from_flat

        version = int(record["version"])
        if self._version is not None and version <= self._version:
            return False
        flat, layout = parse_model_weights_record(record)
        self._net = network_from_flat(flat, layout)
        self._layout = layout
        self._architecture = str(record.get("architecture") or "")
        self._version = version
        self._next_version = max(self._next_version, version + 1)
        self._history = {version: flat}
        if record["kind"] == "MAJOR":
            self._minor_count = 0
        return True

    def resume_from(self, record: Mapping[str, Any]) -> bool:
        """Without state (a fresh job, or state it could not restore): start from the version the rankers
        serve, the newest record of the model of any kind."""
        return self.rebase(record)

    def on_late_window(self, rows: Sequence[Mapping[str, Any]], why: str) -> WindowResult:
        """Rows of a window that arrived after a later window was decided: all STALE, nothing moves."""
        return late_window(self.model_id, rows, why)

    def _why_stale(self, version: int) -> str | None:
        if version in self._history:
            return None
        if self._version is not None and version < self._version:
            return (f"v{version} is not among the versions samples count from (v{min(self._history)}..v"
                    f"{self._version}: at most {self.config.max_staleness} back, since the last MAJOR/ROLLBACK)")
        return f"v{version} is not a version this learner made or rebased on (current v{self._version})"

    def on_window(self, rows: Sequence[Mapping[str, Any]]) -> WindowResult:
        """One gradient step on the samples of the usable rows; its MINOR record, or none."""
        parsed = [(parse_window_row(r, i), r.get(PDGD_BATCH_FIELD) or b"") for i, r in enumerate(rows)]
        if not parsed:
            return WindowResult(win_rates=[])
        parsed.sort(key=lambda p: p[0].sort_key())
        check_same_window(self.model_id, [p[0] for p in parsed])
        usable = [(row, batch) for row, batch in parsed if self._why_stale(row.model_version) is None]
        stale = [(row, str(self._why_stale(row.model_version))) for row, _ in parsed
                 if self._why_stale(row.model_version) is not None]
        samples, problems = self._samples(usable)
        window_end = parsed[0][0].window_end
        refused: str | None = None
        record = None
        if self._net is None or self._version is None:
            refused = "no version to learn from yet"
        elif not samples:
            refused = "no clicked impression of a usable version"
        else:
            record, refused = self._step(samples, parsed[0][0].window_start, window_end)
        if problems:
            log.warning("model %s window ending %d: %d samples skipped: %s", self.model_id, window_end,
                        len(problems), "; ".join(sorted(set(problems))[:3]))
        decision = ACCEPT if record is not None else REJECT
        win_rates = sorted([row.win_rate_record(decision) for row, _ in usable]
                           + [row.win_rate_record(STALE) for row, _ in stale],
                           key=lambda r: (r["model_version"], r["explore_seed"]))
        for r in win_rates:  # no explore list: a win rate of 0 would read as "the explore list always lost"
            r["win_rate"] = None
        return WindowResult(win_rates=win_rates, weights=record, refused=refused,
                            stale_reasons=[(row.model_version, row.explore_seed, why) for row, why in stale])

    def _samples(self, rows: Sequence[tuple[WindowRow, bytes]]) -> tuple[list[_Sample], list[str]]:
        """The usable samples of the rows' batches, and why others were not. They are summed in (event_time,
        request_id) order, once per request: what the impressions say, not where they sit in Kafka, so any
        partitioning and parallelism give the same bytes (a hostile multileaved "pdgd" impression is in each
        of its seeds' rows: once)."""
        by_request: dict[tuple[int, str], _Sample] = {}
        problems: list[str] = []
        for row, batch in rows:
            if not batch:
                continue
            try:
                raw = serde.decode("PdgdBatch", bytes(batch))["samples"]
            except serde.SerdeError as e:
                problems.append(f"undecodable pdgd_batch of v{row.model_version}: {e}")
                continue
            for r in raw:
                sample = _sample_of(r, row.model_version)
                if isinstance(sample, str):
                    problems.append(sample)
                else:
                    by_request.setdefault(*sample)
        return [by_request[k] for k in sorted(by_request)], problems

    def _step(self, samples: Sequence[_Sample], window_start: int, window_end: int
              ) -> tuple[dict[str, Any] | None, str | None]:
        """Σ over samples of PDGD's gradient, one ascent step; (MINOR record, None) or (None, why not)."""
        import torch

        from models.drn import network_from_flat

        net = self._net
        assert net is not None and self._version is not None
        samplers: dict[int, DrnQNetwork] = {}
        before = [p.detach().clone() for p in net.parameters()]
        net.train()
        objective = torch.zeros((), dtype=torch.float32)
        used = 0
        for s in samples:
            state, actions = torch.from_numpy(s.state)[None], torch.from_numpy(s.actions)[None]
            try:
                q = net(state, actions)[0]
                sampled = q.detach()
                if s.version != self._version:
                    if s.version not in samplers:
                        samplers[s.version] = network_from_flat(self._history[s.version], self._layout).eval()
                    with torch.no_grad():
                        sampled = samplers[s.version](state, actions)[0]
            except RuntimeError as e:  # features of other dims than the network's
                log.warning("model %s: a PDGD sample does not fit the network: %s", self.model_id, e)
                continue
            used += 1
            docs, coef = shown_document_weights((sampled / s.temperature).double().numpy(), s.clicked, s.log_rest,
                                                current=(q / s.temperature).detach().double().numpy())
            if docs.size:  # d/dQ = (1/τ) d/d(Q/τ): taken per unit of Q, so the step size does not depend on τ
                objective = objective + (torch.from_numpy(coef.astype(np.float32)) * q[torch.from_numpy(docs)]).sum()
        if not used:
            net.eval()
            return None, f"none of the {len(samples)} samples fits the network's dims"
        net.zero_grad()
        (-objective).backward()
        with torch.no_grad():
            for p in net.parameters():
                if p.grad is not None:
                    p.add_(p.grad, alpha=-self.config.learning_rate)
            if not all(bool(torch.isfinite(p).all()) for p in net.parameters()):
                for p, old in zip(net.parameters(), before, strict=True):
                    p.copy_(old)
                net.eval()
                return None, (f"the PDGD step over {used} impressions was not finite (learning_rate too "
                              "large?); the version stays")
        net.eval()
        version = self._next_version
        flat = flatten(net)
        record = make_model_weights_record(
            model_id=self.model_id, version=version, parent_version=self._version, kind="MINOR",
            flat=flat, layout=self._layout, created_at=window_end, explore_seeds=[], window_start=window_start,
            window_end=window_end, architecture=self._architecture)
        self._version, self._next_version = version, version + 1
        self._minor_count += 1
        self._history[version] = flat
        self._history = {v: w for v, w in self._history.items() if v >= version - self.config.max_staleness}
        return record, None

    # --- Flink keyed state -------------------------------------------------------------------------
    def snapshot(self) -> bytes:
        """Deterministic bytes of the whole state (models/snapshots.py): the header, then each kept version's
        float32-LE weights in ascending version order."""
        entries, blobs = snapshots.history_entries(self._history)
        header = {"format": 1, "model_id": self.model_id, "version": self._version,
                  "next_version": self._next_version, "minor_count": self._minor_count,
                  "architecture": self._architecture, "layout": [p.to_record() for p in self._layout],
                  "history": entries}
        return snapshots.pack(_SNAPSHOT_MAGIC, header, blobs)

    def restore(self, data: bytes) -> None:
        """Replace this learner's state with a `snapshot()`; ValueError on foreign or corrupt bytes."""
        from models.drn import network_from_flat

        reader = snapshots.Reader(data, _SNAPSHOT_MAGIC, f"model {self.model_id}: PdgdLearner snapshot")
        header = reader.header
        if header.get("format") != 1 or header["model_id"] != self.model_id:
            raise ValueError(f"model {self.model_id}: snapshot of {header.get('model_id')!r}, format "
                             f"{header.get('format')!r}, is not this learner's")
        history = reader.history(header["history"])
        reader.end()
        self._layout = [ParamSpec.from_record(p) for p in header["layout"]]
        self._version = None if header["version"] is None else int(header["version"])
        self._net = (network_from_flat(history[self._version], self._layout)
                     if self._version is not None and self._version in history else None)
        self._history = history
        self._next_version = int(header["next_version"])
        self._minor_count = int(header["minor_count"])
        self._architecture = str(header["architecture"])
