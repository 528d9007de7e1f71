"""Ranker latency: rank + interleave of N candidates with two networks (W and W~) on one core, p50/p99/p99.9
over --iters requests after --warmup: the served path (W and W~ as one DrnStack) side by side with one
DrnScorer.q per network and with the torch scorer; also scoring alone, each interleaving method, and the
cost of a round change (building W~ for a new explore seed). Prints the load average (a shared machine).

Run: PYTHONPATH=. .venv/bin/python bench/bench_ranker.py [--candidates 100 --k 10 --iters 10000]
(PYTHONPATH=. so this checkout's packages are imported, not another editable install's.)
"""

from __future__ import annotations

import os

# one core, set before numpy/torch load their thread pools
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

import argparse  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from models.drn import DrnConfig, DrnQNetwork, DrnScorer, TorchScorer  # noqa: E402
from models.interleave import Method  # noqa: E402
from models.weights import flatten, layout_of  # noqa: E402
from operators.ranker import Ranker, RankerConfig, Scorer, ServedModel  # noqa: E402

T0 = 1_700_000_000_000


def _stats(ns: list[int]) -> tuple[float, float, float]:
    """p50, p99, p99.9 in µs."""
    arr = np.asarray(ns, dtype=np.float64) / 1000.0
    p50, p99, p999 = np.percentile(arr, [50, 99, 99.9])
    return float(p50), float(p99), float(p999)


def _loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return f.read().strip()
    except OSError:
        return "n/a"


class _OneQPerNetwork(Ranker):
    """The ranker scoring each network with its own DrnScorer.q (the path before DrnStack)."""

    def _scores(self, served: ServedModel, explorers: list[tuple[int, Scorer]], state: np.ndarray,
                actions: np.ndarray) -> list[np.ndarray]:
        return [served.scorer.q(state, actions), *(s.q(state, actions) for _, s in explorers)]


def _side_by_side(
    fns: dict[str, Callable[[int], object]], iters: int, warmup: int
) -> dict[str, list[int]]:
    """Run the contenders alternately, so load drift on the shared machine hits all alike; the order
    rotates per request, so none always runs right after another's cache footprint (the torch one's)."""
    times: dict[str, list[int]] = {name: [] for name in fns}
    items = list(fns.items())
    for i in range(warmup + iters):
        r = i % len(items)
        for name, fn in items[r:] + items[:r]:
            t = time.perf_counter_ns()
            fn(i)
            dt = time.perf_counter_ns() - t
            if i >= warmup:
                times[name].append(dt)
    return times


def _report(title: str, times: dict[str, list[int]], baseline: str) -> None:
    print(f"\n{title}")
    print(f"  {'path':<30}{'p50 µs':>9}{'p99 µs':>9}{'p99.9 µs':>10}{'p50 ratio':>11}{'p99 ratio':>11}")
    base = _stats(times[baseline])
    for name, ns in times.items():
        p50, p99, p999 = _stats(ns)
        print(f"  {name:<30}{p50:>9.1f}{p99:>9.1f}{p999:>10.1f}{p50 / base[0]:>10.2f}x{p99 / base[1]:>10.2f}x")


def _scoring(
    scorer: DrnScorer | TorchScorer, state: np.ndarray, actions: np.ndarray
) -> Callable[[int], object]:
    return lambda _i: scorer.q(state, actions)


def _ranking(
    ranker: Ranker, state: np.ndarray, cands: list, k: int, round_ms: int = 0
) -> Callable[[int], object]:
    """rank() of request i; with round_ms > 0 every call falls in a new round."""
    return lambda i: ranker.rank(f"req-{i}", "u", T0 + (i + 1) * round_ms, state, cands, k)


def make_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--candidates", type=int, default=100)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--iters", type=int, default=10_000)
    p.add_argument("--warmup", type=int, default=1000)
    p.add_argument("--state-dim", type=int, default=64)
    p.add_argument("--action-dim", type=int, default=64)
    p.add_argument("--seed", type=int, default=0)
    return p


def main(argv: list[str] | None = None) -> None:
    args = make_parser().parse_args(argv)
    torch.set_num_threads(1)
    cfg = DrnConfig(state_dim=args.state_dim, action_dim=args.action_dim, seed=args.seed)
    net = DrnQNetwork(cfg)
    flat, layout = flatten(net), layout_of(net)
    rng = np.random.default_rng(args.seed)
    state = rng.normal(size=cfg.state_dim).astype(np.float32)
    cands = [
        (f"item-{j}", rng.normal(size=cfg.action_dim).astype(np.float32)) for j in range(args.candidates)
    ]
    actions = np.stack([a for _, a in cands])
    print(
        f"DRN {cfg.state_dim}->{cfg.state_hidden} / {cfg.action_dim}->{cfg.action_hidden}, "
        f"{flat.size} parameters; {args.candidates} candidates, k={args.k}, {args.iters} requests after "
        f"{args.warmup} warm-up, 1 thread; loadavg {_loadavg()}"
    )

    rankers: dict[str, Ranker] = {}
    for name, cls, factory in (
        ("numpy, DrnStack (served)", Ranker, DrnScorer),
        ("numpy, one q() per network", _OneQPerNetwork, DrnScorer),
        ("torch", Ranker, TorchScorer),
    ):
        r = cls(RankerConfig(alpha=0.1, base_seed=args.seed), scorer_factory=factory)
        r.set_weights(flat, layout, version=1)
        rankers[name] = r
    _report(
        f"rank + team-draft interleave, {args.candidates} candidates, two networks (W, W~ cached per round)",
        _side_by_side({n: _ranking(r, state, cands, args.k) for n, r in rankers.items()}, args.iters, args.warmup),
        "numpy, DrnStack (served)",
    )

    scorers: dict[str, DrnScorer | TorchScorer] = {
        "numpy DrnScorer": DrnScorer(flat, layout),
        "torch TorchScorer": TorchScorer(flat, layout),
    }
    _report(
        f"score {args.candidates} candidates with one network",
        _side_by_side({n: _scoring(s, state, actions) for n, s in scorers.items()}, args.iters, args.warmup),
        "numpy DrnScorer",
    )

    methods = {
        "team_draft": RankerConfig(interleaving=Method.TEAM_DRAFT),
        "balanced": RankerConfig(interleaving=Method.BALANCED),
        "probabilistic": RankerConfig(interleaving=Method.PROBABILISTIC),
        "multileave (3 explore)": RankerConfig(interleaving=Method.TEAM_DRAFT, n_explore=3),
    }
    by_method = {}
    for name, rc in methods.items():
        r = Ranker(rc)
        r.set_weights(flat, layout, version=1)
        by_method[name] = r
    _report(
        "numpy ranker by interleaving method",
        _side_by_side({n: _ranking(r, state, cands, args.k) for n, r in by_method.items()}, args.iters, args.warmup),
        "team_draft",
    )

    # A round change rebuilds W~ = W + ΔW(seed): a new round index each call forces it.
    round_ms = RankerConfig().round_ms
    _report(
        "first request of a round (builds W~ for the new explore seed, then ranks)",
        _side_by_side(
            {n: _ranking(r, state, cands, args.k, round_ms) for n, r in rankers.items() if "one q()" not in n},
            max(50, args.iters // 10),
            warmup=5,
        ),
        "numpy, DrnStack (served)",
    )


if __name__ == "__main__":
    main()
