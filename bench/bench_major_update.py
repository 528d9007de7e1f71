"""Major update: DDQN training throughput (transitions/s) on CPU (1 thread and all threads) and on the GPU
when present, memory for one million transitions, and the log -> transitions rate (Avro decode + build).

Shapes are the simulator's (state 16, action 23, 10 slots per impression) with DRN's default network.
Run: `.venv/bin/python bench/bench_major_update.py [--repeats N] [--steps S]`.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

import numpy as np
import torch

from models.drn import DrnConfig, DrnQNetwork
from models.major.ddqn import DdqnConfig, DdqnTrainer
from models.transitions import TransitionSet, build_transitions
from schemas import serde

DS, DA, K = 16, 23, 10


def synthetic_set(n_impressions: int, seed: int = 0) -> TransitionSet:
    """A TransitionSet of the simulator's shapes (random features, 10% clicks, users of 20 requests)."""
    rng = np.random.default_rng(seed)
    users = [f"u{i % max(1, n_impressions // 20)}" for i in range(n_impressions)]
    nxt = np.full(n_impressions, -1, dtype=np.int64)
    step = max(1, n_impressions // 20)
    nxt[: n_impressions - step] = np.arange(step, n_impressions)
    return TransitionSet(
        request_ids=[f"r{i}" for i in range(n_impressions)], user_ids=users,
        event_time=np.arange(n_impressions, dtype=np.int64) * 100,
        states=rng.normal(size=(n_impressions, DS)).astype(np.float32),
        actions=rng.normal(size=(n_impressions, K, DA)).astype(np.float32),
        mask=np.ones((n_impressions, K), dtype=bool), clicks=rng.random((n_impressions, K)) < 0.1,
        activeness=rng.random(n_impressions).astype(np.float32), next_index=nxt, beta=0.05,
    )


def train_rate(data: TransitionSet, device: str, threads: int, steps: int, repeats: int,
               batch: int = 256) -> float:
    """Median transitions/s of `steps` DDQN steps (after a warm-up)."""
    torch.set_num_threads(threads)
    rates = []
    for r in range(repeats + 1):
        net = DrnQNetwork(DrnConfig(DS, DA, seed=r))
        trainer = DdqnTrainer(data, np.arange(data.n_impressions, dtype=np.int64), net,
                              DdqnConfig(steps=steps, batch_size=batch, seed=r, device=device))
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        trainer.run()
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        if r:  # the first run warms up allocators and kernels
            rates.append(steps * batch / (time.perf_counter() - t0))
    return statistics.median(rates)


def memory_per_million() -> dict[str, float]:
    """Bytes held for 1M transitions (100k impressions x 10 slots): the TransitionSet arrays and what the
    trainer adds (its device copies and the (row, slot) index)."""
    data = synthetic_set(100_000)
    assert data.n_transitions == 1_000_000
    trainer = DdqnTrainer(data, np.arange(data.n_impressions, dtype=np.int64), DrnQNetwork(DrnConfig(DS, DA)),
                          DdqnConfig(steps=0, device="cpu"))
    tensors: list[Any] = [trainer._states, trainer._actions, trainer._mask, trainer._rewards, trainer._next]
    extra = sum(t.element_size() * t.nelement() for t in tensors) + trainer._pairs.nbytes
    # On the CPU torch.from_numpy shares memory with the arrays: only rewards and pairs are new there.
    shared = sum(a.nbytes for a in (data.states, data.actions, data.mask, data.next_index))
    return {"transition_set_mb": data.nbytes() / 2**20, "trainer_device_copy_mb": extra / 2**20,
            "trainer_new_on_cpu_mb": (extra - shared) / 2**20}


def build_rate(n: int = 5000) -> tuple[float, float]:
    """(Avro-decoded records/s, transitions built/s) for n logged impressions and their clicks."""
    rng = np.random.default_rng(0)
    imps, clicks = [], []
    for i in range(n):
        feats = rng.normal(size=(K, DA)).astype(np.float32)
        imps.append(serde.encode("Impression", {
            "request_id": f"r{i}", "user_id": f"u{i % 500}", "event_time": i * 100, "model_id": "m",
            "model_version": 0, "explore_seed": 0, "state_features": rng.normal(size=DS).tolist(),
            "slots": [{"item_id": f"i{j}", "position": j, "team": "CURRENT", "features": feats[j].tolist(),
                       "explore_seed": None} for j in range(K)],
        }))
        clicks.append(serde.encode("Click", {"request_id": f"r{i}", "item_id": "i0", "event_time": i * 100 + 5}))
    t0 = time.perf_counter()
    dec_i = [serde.decode("Impression", b) for b in imps]
    dec_c = [serde.decode("Click", b) for b in clicks]
    t1 = time.perf_counter()
    ts = build_transitions(dec_i, dec_c, log_end_ms=n * 100)
    t2 = time.perf_counter()
    return 2 * n / (t1 - t0), ts.n_transitions / (t2 - t1)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--steps", type=int, default=100)
    a = p.parse_args()
    data = synthetic_set(20_000)
    rates: dict[str, float] = {}
    rates["cpu, 1 thread"] = train_rate(data, "cpu", 1, a.steps, a.repeats)
    all_threads = max(1, torch.get_num_threads(), __import__("os").cpu_count() or 1)
    if all_threads > 1:
        rates[f"cpu, {all_threads} threads"] = train_rate(data, "cpu", all_threads, a.steps, a.repeats)
    if torch.cuda.is_available():
        rates["gpu " + torch.cuda.get_device_name(0)] = train_rate(data, "cuda", 1, a.steps * 5, a.repeats)
    else:
        print("no GPU here: GPU row skipped")
    base = rates["cpu, 1 thread"]
    print(f"DDQN training, batch 256, DRN default network (state {DS}, action {DA}, {K} slots), "
          f"median of {a.repeats}:")
    for name, r in rates.items():
        print(f"  {name:<40} {r:>12,.0f} transitions/s   x{r / base:.2f} vs cpu 1 thread")
    mem = memory_per_million()
    print("memory for 1M transitions (100k impressions x 10 slots):")
    for k, v in mem.items():
        print(f"  {k:<28} {v:8.1f} MiB")
    dec, build = build_rate()
    print(f"log -> transitions: Avro decode {dec:,.0f} records/s; build_transitions {build:,.0f} transitions/s")


if __name__ == "__main__":
    main()
