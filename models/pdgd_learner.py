"""PDGD on the DRN network, one MINOR per window (issue 14): the learner of a ranker that samples its lists.

The ranker (operators/pdgd_ranker.py) shows the top k of a Plackett–Luce sample over the served version's
Q/τ and logs, beside the shown items, `log_rest`: log Σ e^{Q/τ} over the candidates it did not show. That
is all PDGD's debiasing weight ρ needs besides the shown items' scores, so the learner never needs the
unshown candidates' features (models/pdgd.py: `document_weights` over the shown scores plus one
never-placed pseudo-document of score `log_rest` gives exactly the same ρ as over all candidates).

Per window the learner takes the impressions its current version served, recomputes the shown items'
Q/τ with autograd (the version that served them is the one it holds, so the scores are the sampling
scores), sums PDGD's gradient Σ_d c_d ∇(Q(d)/τ) over the window's clicked impressions and takes one
gradient-ascent step of `learning_rate`: the MINOR version. Impressions of other versions are stale and
skipped, as DBGD's rows are. A MAJOR or ROLLBACK is rebased on as DBGD does.

In-memory only for now: the minor-update job does not run PDGD (its impressions do not carry `log_rest`).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from models.dbgd import WindowResult
from models.drn import DrnQNetwork, network_from_flat
from models.pdgd import shown_document_weights
from models.weights import Layout, flatten, make_model_weights_record, parse_model_weights_record

#: Key of the PDGD sampling facts in an in-memory impression: {"temperature": τ, "log_rest": float}.
PDGD_FIELD = "pdgd"


@dataclass(frozen=True)
class PdgdConfig:
    """The step size of one window's update, and the temperature of the ranker's Plackett–Luce sampling."""

    learning_rate: float = 0.01
    temperature: float = 1.0

    def __post_init__(self) -> None:
        if not (math.isfinite(self.learning_rate) and self.learning_rate > 0):
            raise ValueError(f"PDGD learning_rate must be finite and > 0, got {self.learning_rate!r}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"PDGD temperature must be finite and > 0, got {self.temperature!r}")


@dataclass
class _Kept:
    state: npt.NDArray[np.float32]
    actions: npt.NDArray[np.float32]
    clicked: npt.NDArray[np.bool_]
    log_rest: float


class PdgdLearner:
    """Holds the current version; `observe` keeps its clicked impressions, `on_window` steps and publishes."""

    def __init__(self, model_id: str, config: PdgdConfig) -> None:
        self.model_id = model_id
        self.config = config
        self._net: DrnQNetwork | None = None
        self._layout: Layout | None = None
        self._architecture = ""
        self._version: int | None = None
        self._next_version = 1
        self._kept: list[_Kept] = []

    @property
    def version(self) -> int | None:
        return self._version

    @property
    def next_version(self) -> int:
        return self._next_version

    def rebase(self, record: Mapping[str, Any]) -> bool:
        """Adopt a MAJOR or ROLLBACK (or a first MINOR) as the current version; False for an older one."""
        version = int(record["version"])
        if self._version is not None and version <= self._version:
            return False
        flat, layout = parse_model_weights_record(record)
        self._net = network_from_flat(flat, layout)
        self._layout = layout
        self._architecture = str(record.get("architecture") or "")
        self._version = version
        self._next_version = max(self._next_version, version + 1)
        self._kept.clear()
        return True

    def observe(self, impression: Mapping[str, Any], clicked_items: Iterable[str]) -> None:
        """Keep one impression of the current version that has a click (only those carry a preference)."""
        facts = impression.get(PDGD_FIELD)
        if facts is None or int(impression["model_version"]) != self._version:
            return
        clicked_set = set(clicked_items)
        clicked = np.array([s["item_id"] in clicked_set for s in impression["slots"]], dtype=bool)
        if not clicked.any():
            return
        self._kept.append(_Kept(np.asarray(impression["state_features"], dtype=np.float32),
                                np.asarray([s["features"] for s in impression["slots"]], dtype=np.float32),
                                clicked, float(facts["log_rest"])))

    def on_window(self, rows: Sequence[Mapping[str, Any]]) -> WindowResult:
        """One gradient step on the window's kept impressions; its MINOR record, or none without a click.
        Of `rows` (the window's count rows, what run_loop hands every learner) PDGD takes the window end only."""
        window_end = max((int(r["window_end"]) for r in rows), default=0)
        kept, self._kept = self._kept, []
        if not kept or self._net is None or self._version is None or self._layout is None:
            return WindowResult(win_rates=[], refused="no clicked impression of the current version")
        net, tau = self._net, self.config.temperature
        before = [p.detach().clone() for p in net.parameters()]
        net.train()
        objective = torch.zeros((), dtype=torch.float32)
        for item in kept:
            q = net(torch.from_numpy(item.state)[None], torch.from_numpy(item.actions)[None])[0]
            docs, coef = shown_document_weights((q / tau).detach().double().numpy(), item.clicked, item.log_rest)
            if docs.size:  # d/dQ = (1/τ) d/d(Q/τ): taken per unit of Q, so the step size does not depend on τ
                objective = objective + (torch.from_numpy(coef.astype(np.float32)) * q[torch.from_numpy(docs)]).sum()
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
                return WindowResult(win_rates=[], refused=f"the PDGD step over {len(kept)} impressions was not "
                                    "finite (learning_rate too large?); the version stays")
        net.eval()
        version = self._next_version
        record = make_model_weights_record(
            model_id=self.model_id, version=version, parent_version=self._version, kind="MINOR",
            flat=flatten(net), layout=self._layout, created_at=window_end, explore_seeds=[],
            architecture=self._architecture)
        self._version, self._next_version = version, version + 1
        return WindowResult(win_rates=[], weights=record)
