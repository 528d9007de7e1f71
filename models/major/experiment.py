"""The major update against the simulator, in-process (no Kafka): simulated users meet the DRN ranker
serving a base version; the logged impressions and clicks feed `run_update`; the base and the candidate
are then ranked greedily on fresh simulated users (models/simulator/evaluate.py: exact expected clicks).

Run: `python -m models.major.experiment [--impressions N] [--steps S] [--seed K] [--out DIR]`; writes
the run report (JSON + Markdown) and prints the offline table and the simulated CTRs.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from models.drn import DrnConfig, DrnQNetwork, DrnScorer
from models.major.ddqn import DdqnConfig
from models.major.update import BaseModel, LogRange, MajorUpdateConfig, UpdateOutcome, report_markdown, run_update
from models.simulator import ArrivalConfig, Simulator, SimulatorConfig, World, WorldConfig, evaluate_policy
from models.simulator.policies import impression_record
from models.weights import flatten, layout_of
from operators.ranker import Ranker, RankerConfig


class GreedyDrnPolicy:
    """Ranks by the DRN network's Q, no exploration (what the served version does on its own)."""

    def __init__(self, flat: npt.ArrayLike, layout: Any, model_id: str = "drn") -> None:
        self.scorer = DrnScorer(flat, layout)
        self.model_id = model_id

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int) -> dict[str, Any]:
        q = self.scorer.q(state_features, np.asarray([c[1] for c in candidates], dtype=np.float32))
        order = [int(i) for i in np.argsort(-q, kind="stable")]
        return impression_record(request_id=request_id, user_id=user_id, event_time=event_time,
                                 model_id=self.model_id, order=order, candidates=candidates,
                                 state_features=state_features, k=k)


@dataclass(frozen=True)
class SimulatedCtr:
    ctr: float
    ndcg: float
    p_any_click: float


def base_network(world: World, seed: int) -> BaseModel:
    """A base version: a fresh DRN network (what a model without a major update yet serves)."""
    net = DrnQNetwork(DrnConfig(world.state_dim, world.action_dim, seed=seed))
    return BaseModel(0, flatten(net), layout_of(net))


def simulate_log(world: World, base: BaseModel, n: int, seed: int, click_model: str) -> LogRange:
    """n impressions of the DRN ranker (interleaving with explore perturbations) serving `base`."""
    ranker = Ranker(RankerConfig(model_id="drn", base_seed=seed))
    ranker.set_weights(base.flat, base.layout, base.version)
    sim = Simulator(world, ranker, SimulatorConfig(seed=seed, click_model=click_model,
                                                   arrivals=ArrivalConfig(time_compression=2000.0)))
    imps, clicks = [], []
    for step in sim.run(n):
        imps.append(step.impression)
        clicks += step.clicks
    start = int(imps[0]["event_time"])
    end = int(imps[-1]["event_time"]) + 1
    return LogRange("drn", start, end, imps, clicks)


def simulated_ctr(world: World, flat: npt.ArrayLike, layout: Any, n: int, seed: int,
                  click_model: str) -> SimulatedCtr:
    rep = evaluate_policy(GreedyDrnPolicy(flat, layout), world, n, seed, click_model_name=click_model)
    return SimulatedCtr(rep.ctr, rep.ndcg, rep.p_any_click)


def run(impressions: int, steps: int, seed: int, click_model: str, eval_requests: int,
        out: Path | None, device: str = "auto", gate_margin: float = 0.01,
        ) -> tuple[UpdateOutcome, SimulatedCtr, SimulatedCtr | None]:
    world = World.build(WorldConfig(seed=seed))
    base = base_network(world, seed)
    data_log = simulate_log(world, base, impressions, seed, click_model)
    cfg = MajorUpdateConfig(ddqn=replace(DdqnConfig(), steps=steps, seed=seed, device=device),
                            gate_margin=gate_margin)
    outcome = run_update(data_log, base, cfg, checkpoint_dir=None, progress=sys.stderr.isatty())
    base_ctr = simulated_ctr(world, base.flat, base.layout, eval_requests, seed + 1, click_model)
    cand_ctr = None
    report = outcome.report
    report["simulated"] = {"click_model": click_model, "requests": eval_requests,
                           "base": base_ctr.__dict__}
    if outcome.network is not None:
        cand_ctr = simulated_ctr(world, flatten(outcome.network), layout_of(outcome.network), eval_requests,
                                 seed + 1, click_model)
        report["simulated"]["candidate"] = cand_ctr.__dict__
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2, default=str), encoding="utf-8")
        md = report_markdown(report) + (f"\n## Simulated users ({click_model}, {eval_requests} requests)\n\n"
                                        f"- base: {base_ctr}\n- candidate: {cand_ctr}\n")
        (out / "report.md").write_text(md, encoding="utf-8")
    return outcome, base_ctr, cand_ctr


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--impressions", type=int, default=20_000)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--click-model", default="pbm")
    p.add_argument("--eval-requests", type=int, default=3000)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", type=Path, default=None)
    p.add_argument("--gate-margin", type=float, default=0.01)
    a = p.parse_args(argv)
    outcome, base_ctr, cand_ctr = run(a.impressions, a.steps, a.seed, a.click_model, a.eval_requests, a.out,
                                      a.device, a.gate_margin)
    print(report_markdown(outcome.report))
    print(f"simulated ({a.click_model}): base {base_ctr}\n                candidate {cand_ctr}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
