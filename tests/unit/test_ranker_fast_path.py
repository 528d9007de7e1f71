"""The ranker's serving fast path (issue 15 item 4) gives the very bytes of the straightforward computation:
DrnStack vs one DrnScorer.q per network, the unrolled two-list team draft vs multileave's general loop,
request_rng's uint32 seeding vs default_rng(list), and whole impressions vs a plain reference rank, over
many seeded requests, with tied scores (repeated feature rows) included."""

from __future__ import annotations

import hashlib
import pickle
from collections.abc import Hashable, Sequence
from typing import Any

import numpy as np
import pytest

from models.drn import DrnConfig, DrnQNetwork, DrnScorer, DrnStack
from models.interleave import Pick, interleave, multileave
from models.perturbation import explore_weights
from models.weights import flatten, layout_of
from operators.ranker import Ranker, RankerConfig, _ranking, request_rng, round_index
from schemas.records import impression_record

T0 = 1_700_000_000_000
NETS = [
    DrnConfig(state_dim=4, action_dim=6, state_hidden=(16, 8), action_hidden=(16, 8), seed=7),
    DrnConfig(state_dim=64, action_dim=64, seed=0),
    DrnConfig(state_dim=8, action_dim=5, state_hidden=(12,), action_hidden=(9, 7, 5), seed=3),
]


def _weights(cfg: DrnConfig) -> tuple[np.ndarray, Any]:
    net = DrnQNetwork(cfg)
    return flatten(net), layout_of(net)


def _features(rng: np.random.Generator, n: int, dim: int, t: int) -> np.ndarray:
    """Candidate features; every third request repeats rows (tied scores), every seventh is coarse."""
    feats = rng.normal(size=(n, dim)).astype(np.float32)
    if n > 3 and t % 3 == 0:
        feats[rng.integers(n, size=n // 2)] = feats[0]
    if t % 7 == 0:
        feats = np.round(feats)
    return feats


def test_stack_gives_each_scorers_bits() -> None:
    ties = 0
    for ni, cfg in enumerate(NETS):
        flat, layout = _weights(cfg)
        scorers = [DrnScorer(flat, layout)]
        scorers += [DrnScorer(explore_weights(flat, s, 0.3), layout) for s in (11, 12)]
        stack = DrnStack(scorers)
        rng = np.random.default_rng(ni)
        for t in range(200):
            n = int(rng.choice([0, 1, 7, 100, 130]))
            state = (rng.normal(size=cfg.state_dim) * rng.uniform(0.01, 5)).astype(np.float32)
            actions = _features(rng, n, cfg.action_dim, t)
            got = stack.q_all(state, actions)
            assert len(got) == len(scorers)
            for q, scorer in zip(got, scorers, strict=True):
                want = scorer.q(state, actions)
                assert q.dtype == want.dtype and q.shape == want.shape
                assert q.tobytes() == want.tobytes()
            ties += int(n > 1 and len(np.unique(got[0])) < n)
    assert ties > 50  # the check covered tie orders


def test_stack_rejects_mixed_architectures() -> None:
    with pytest.raises(ValueError, match="same architecture"):
        DrnStack([DrnScorer(*_weights(NETS[0])), DrnScorer(*_weights(NETS[2]))])
    with pytest.raises(ValueError, match="same architecture"):
        DrnStack([])


def _multileave_reference(lists: Sequence[Sequence[Hashable]], k: int, rng: np.random.Generator) -> list[Pick[Any]]:
    """multileave's general loop as it was before the two-list fast path."""
    limit = min(k, len(set().union(*lists)))
    shown: set[Hashable] = set()
    out: list[Pick[Any]] = []
    cursor = [0] * len(lists)
    counts = [0] * len(lists)
    while len(out) < limit:
        alive = []
        for j, lst in enumerate(lists):
            while cursor[j] < len(lst) and lst[cursor[j]] in shown:
                cursor[j] += 1
            if cursor[j] < len(lst):
                alive.append(j)
        fewest = min(counts[j] for j in alive)
        tied = [j for j in alive if counts[j] == fewest]
        j = tied[int(rng.integers(len(tied)))] if len(tied) > 1 else tied[0]
        item = lists[j][cursor[j]]
        shown.add(item)
        out.append(Pick(item, j))
        counts[j] += 1
    return out


def test_two_list_team_draft_is_the_general_loop() -> None:
    rng = np.random.default_rng(3)
    for t in range(500):
        n = int(rng.integers(0, 30))
        a = rng.permutation(n).tolist()
        other = rng.choice(40, size=int(rng.integers(0, 30)), replace=False)  # partly other items
        b = rng.permutation(n).tolist() if t % 2 else other.tolist()
        k = int(rng.integers(0, 35))
        r1, r2 = np.random.default_rng(t), np.random.default_rng(t)
        assert multileave([a, b], k, r1) == _multileave_reference([a, b], k, r2)
        assert r1.bit_generator.state == r2.bit_generator.state  # the same draws were made


def test_request_rng_is_default_rng_of_the_list() -> None:
    rng = np.random.default_rng(4)
    for t in range(500):
        base = int(rng.integers(0, 2**32)) if t % 3 else int(rng.integers(0, 2**62))
        rnd = int(rng.integers(0, 2**32)) if t % 5 else int(rng.integers(0, 2**40))
        rid = f"req-{t}-{rng.integers(1 << 30)}"
        h = int.from_bytes(hashlib.blake2b(rid.encode("utf-8"), digest_size=8).digest(), "little")
        want = np.random.default_rng([base, h & 0xFFFFFFFF, h >> 32, rnd])
        assert request_rng(base, rid, rnd).bit_generator.state == want.bit_generator.state


def _reference_rank(r: Ranker, request_id: str, user_id: str, event_time: int, state_features: Any,
                    candidates: Sequence[tuple[str, Any]], k: int) -> dict[str, Any]:
    """rank() computed the straightforward way: one q() per network, the general interleaving loop."""
    served, state, item_ids, actions = r._checked_request(request_id, state_features, candidates, k)
    cfg = r.config
    rnd = round_index(event_time, cfg.round_ms)
    explorers = r.explore_scorers(event_time)
    lists = [_ranking(served.scorer.q(state, actions))] + [_ranking(s.q(state, actions)) for _, s in explorers]
    h = int.from_bytes(hashlib.blake2b(request_id.encode("utf-8"), digest_size=8).digest(), "little")
    rng = np.random.default_rng([int(cfg.base_seed), h & 0xFFFFFFFF, h >> 32, int(rnd)])
    if len(lists) == 2 and cfg.method.value == "team_draft":
        picks = _multileave_reference(lists, k, rng)
    else:
        picks = interleave(cfg.method, lists, k, rng, cfg.tau)
    seeds = [s for s, _ in explorers]
    return impression_record(
        request_id=request_id, user_id=user_id, event_time=event_time, model_id=cfg.model_id,
        model_version=served.version, explore_seeds=seeds,
        slots=((item_ids[p.item], p.team.value, actions[p.item].tolist(),
                None if p.source == 0 else seeds[p.source - 1]) for p in picks),
        state_features=state.tolist(), interleaving=cfg.method.value,
    )


CONFIGS = [
    {},
    {"interleaving": "balanced"},
    {"interleaving": "probabilistic"},
    {"n_explore": 3},
    {"perturbation": "unit_sphere", "alpha": 0.5},
    {"alpha": 0.0},
    {"n_explore": 2, "base_seed": 2**40 + 3},
]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_rank_gives_the_reference_bytes(cfg: dict[str, Any]) -> None:
    for ni, net in enumerate(NETS):
        flat, layout = _weights(net)
        r = Ranker(RankerConfig(**{"alpha": 0.3, "round_ms": 60_000, "base_seed": 5, **cfg}))
        r.set_weights(flat, layout, version=1)
        rng = np.random.default_rng(100 * ni + len(cfg))
        for t in range(500 if ni == 0 else 60):
            if t == 30:  # a new version mid-way: the stack follows it
                r.set_weights(flat * np.float32(1.01), layout, version=2)
            n = int(rng.choice([0, 1, 2, 10, 100]))
            state = (rng.normal(size=net.state_dim) * rng.uniform(0.01, 5)).astype(np.float32)
            feats = _features(rng, n, net.action_dim, t)
            cands = [(f"i{j}", feats[j] if t % 2 else feats[j].tolist()) for j in range(n)]
            k = int(rng.choice([1, 3, 10, 200]))
            et = T0 + int(rng.integers(0, 4)) * 60_000 + t
            got = r.rank(f"req-{t}", "u", et, state, cands, k)
            want = _reference_rank(r, f"req-{t}", "u", et, state, cands, k)
            assert pickle.dumps(got) == pickle.dumps(want)
