"""GE re-ranking in the serving path (operators/reranker.py): valid Impressions credited to the generator's
model_id, the pinned item first, seeded repeatability, weights routing, and DBGD moving the generator's
weights in an in-memory loop against a ListEnvironment truth."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import pytest
import torch

from drnflow.demo.inmemory import run_loop
from models.dbgd import DbgdConfig, DbgdLearner, WindowResult
from models.drn import DrnConfig, DrnQNetwork
from models.ge.environment import EnvConfig, ListEnvironment
from models.ge.pointer_generator import GeneratorConfig, PointerGenerator
from models.ge.tensors import RequestTensors
from models.interleave import Team
from models.perturbation import explore_delta, explore_weights
from models.weights import WeightsError, flatten, layout_of, make_model_weights_record, unflatten_into
from operators.ranker import Ranker, RankerConfig, RankerNotReady, explore_seeds_for, round_index
from operators.reranker import (
    ColumnCategories,
    GeReranker,
    GreedyPointerDecoder,
    RerankerConfig,
    RerankingRanker,
    generator_architecture,
    initial_generator_record,
)
from schemas import serde

torch.set_num_threads(1)
T0 = 1_700_000_000_000
ENV = EnvConfig(n_users=200, n_items=400, n_shops=10, n_types=4, item_dim=8, user_dim=6, latent_dim=6,
                candidates=12, list_size=5, trigger_prob=0.5)
STATE_DIM, ACTION_DIM = ENV.user_dim, ENV.item_dim + 2  # action = item features + shop id + type id
GEN = GeneratorConfig(item_dim=ACTION_DIM, user_dim=STATE_DIM, n_shops=ENV.n_shops, n_types=ENV.n_types,
                      hidden=16, embedding=4)
CATEGORIES = ColumnCategories(shop_column=ENV.item_dim, type_column=ENV.item_dim + 1,
                              n_shops=ENV.n_shops, n_types=ENV.n_types)


def _drn_record(seed: int = 1) -> dict[str, Any]:
    cfg = DrnConfig(STATE_DIM, ACTION_DIM, state_hidden=(16, 8), action_hidden=(16, 8), seed=seed)
    net = DrnQNetwork(cfg)
    return make_model_weights_record("drn", 1, None, "MAJOR", flatten(net), layout_of(net), T0, [],
                                     architecture=cfg.to_json())


def _ranker(alpha: float = 0.5, top_m: int = 8, seed: int = 0, round_ms: int = 60_000,
            gen_seed: int = 3, **extra: Any) -> RerankingRanker:
    drn = Ranker(RankerConfig(model_id="drn", base_seed=seed))
    drn.apply_weights(_drn_record())
    cfg = RerankerConfig(model_id="ge", top_m=top_m, alpha=alpha, base_seed=seed, round_ms=round_ms, **extra)
    reranker = GeReranker(cfg, GEN, CATEGORIES, reward=_reward if cfg.best_of_k > 1 else None)
    reranker.apply_weights(initial_generator_record("ge", GEN, seed=gen_seed, created_at=T0))
    return RerankingRanker(drn, reranker)


def _reward(requests: RequestTensors, lists: torch.Tensor) -> torch.Tensor:
    """A stand-in list reward: how many distinct shops the list shows (plus a tiny order term)."""
    rows = torch.arange(len(requests)).unsqueeze(1)
    shops = requests.shop[rows, lists]
    distinct = torch.tensor([float(len(set(s.tolist()))) for s in shops])
    return distinct - 1e-3 * lists[:, 0].float()


def _request(env: ListEnvironment, rng: np.random.Generator) -> tuple[int, Any, list[tuple[str, Any]], int]:
    """(user, state, candidates, pinned candidate index or -1) of one ListEnvironment request."""
    batch = env.make_requests(1, rng)
    actions = np.hstack([batch.item_features[0], batch.shop[0][:, None], batch.item_type[0][:, None]])
    cands = [(str(int(item)), actions[j].astype(np.float32)) for j, item in enumerate(batch.candidates[0])]
    return int(batch.user[0]), batch.user_features[0], cands, int(batch.pinned[0])


def _impression(ranker: RerankingRanker, request_id: str = "r-1", event_time: int = T0,
                pinned: str | None = None) -> dict[str, Any]:
    env = ListEnvironment(ENV, seed=0)
    _, state, cands, _ = _request(env, np.random.default_rng(5))
    return ranker.rank(request_id, "u1", event_time, state, cands, ENV.list_size, pinned=pinned)


# --- the Impression ----------------------------------------------------------------------------------
def test_reranked_impression_is_valid_avro_credited_to_the_generator() -> None:
    ranker = _ranker()
    imp = _impression(ranker)
    back = serde.decode("Impression", serde.encode("Impression", imp))
    assert back["model_id"] == "ge" and back["model_version"] == 1
    assert back["generator"] == "pointer-greedy"
    assert back["interleaving"] == "team_draft"
    seed = explore_seeds_for(0, 1, round_index(T0, 60_000), 1)[0]
    assert back["explore_seed"] == seed and back["explore_seeds"] == [seed]
    slots = back["slots"]
    assert [s["position"] for s in slots] == list(range(ENV.list_size))
    assert len({s["item_id"] for s in slots}) == ENV.list_size
    assert {s["team"] for s in slots} <= {"CURRENT", "EXPLORE"}
    for s in slots:
        assert s["explore_seed"] == (seed if s["team"] == "EXPLORE" else None)
        assert len(s["features"]) == ACTION_DIM


def test_shown_items_come_from_the_drn_top_m() -> None:
    ranker = _ranker(top_m=6)
    env = ListEnvironment(ENV, seed=0)
    _, state, cands, _ = _request(env, np.random.default_rng(5))
    served = ranker.drn.served
    assert served is not None
    q = served.scorer.q(state, np.stack([a for _, a in cands]))
    top6 = {cands[int(i)][0] for i in np.argsort(-q, kind="stable")[:6]}
    imp = ranker.rank("r", "u", T0, state, cands, ENV.list_size)
    assert {s["item_id"] for s in imp["slots"]} <= top6


def test_explore_slots_come_from_the_perturbed_generator() -> None:
    ranker = _ranker(alpha=0.8)
    env = ListEnvironment(ENV, seed=0)
    rng = np.random.default_rng(11)
    reranker = ranker.reranker
    served = reranker.served
    assert served is not None
    seed, explorer = reranker.explore_generators(T0)[0]
    # the explore generator is W + ΔW(seed; W) of models/perturbation.py, nothing else
    rebuilt = PointerGenerator(GEN)
    unflatten_into(rebuilt, explore_weights(served.flat, seed, 0.8), served.layout)
    assert all(torch.equal(a, b) for a, b in zip(explorer.parameters(), rebuilt.parameters(), strict=True))
    differed = 0
    for i in range(8):
        _, state, cands, _ = _request(env, rng)
        actions = np.stack([a for _, a in cands])
        top, q = ranker.top_m(state, actions, None)
        current = reranker.rerank(state, actions[top], q, ENV.list_size).order
        explore = reranker.rerank(state, actions[top], q, ENV.list_size, generator=explorer).order
        differed += current != explore
        imp = ranker.rank(f"r{i}", "u", T0, state, cands, ENV.list_size)
        for s in imp["slots"]:
            j = top.index([c[0] for c in cands].index(s["item_id"]))
            assert j in (explore if s["team"] == Team.EXPLORE else current)
    assert differed > 0, "alpha=0.8 should make the perturbed generator order differently"


@pytest.mark.parametrize("top_m", [3, 8])
def test_pinned_item_is_shown_first_even_outside_the_top_m(top_m: int) -> None:
    ranker = _ranker(top_m=top_m)
    env = ListEnvironment(ENV, seed=0)
    _, state, cands, _ = _request(env, np.random.default_rng(5))
    served = ranker.drn.served
    assert served is not None
    q = served.scorer.q(state, np.stack([a for _, a in cands]))
    worst = cands[int(np.argmin(q))][0]
    for i in range(6):
        imp = ranker.rank(f"r{i}", "u", T0, state, cands, ENV.list_size, pinned=worst)
        assert imp["slots"][0]["item_id"] == worst
        assert len({s["item_id"] for s in imp["slots"]}) == min(ENV.list_size, top_m)
    with pytest.raises(ValueError, match="pinned item 'nope' is not among the candidates"):
        ranker.rank("r", "u", T0, state, cands, ENV.list_size, pinned="nope")


def test_seeded_repeatability_and_arrival_order_independence() -> None:
    env = ListEnvironment(ENV, seed=0)
    rng = np.random.default_rng(3)
    requests = [_request(env, rng) for _ in range(6)]
    a, b = _ranker(), _ranker()
    first = [a.rank(f"r{i}", "u", T0 + i, r[1], r[2], ENV.list_size) for i, r in enumerate(requests)]
    second = [b.rank(f"r{i}", "u", T0 + i, r[1], r[2], ENV.list_size)
              for i, r in reversed(list(enumerate(requests)))][::-1]
    assert first == second
    other_seed = _ranker(seed=1)
    third = [other_seed.rank(f"r{i}", "u", T0 + i, r[1], r[2], ENV.list_size) for i, r in enumerate(requests)]
    assert [x["explore_seed"] for x in third] != [x["explore_seed"] for x in first]


def test_best_of_k_keeps_the_list_the_reward_prefers() -> None:
    ranker = _ranker(best_of_k=6)
    imp = _impression(ranker)
    assert imp["generator"] == "pointer-best-of-6"
    env = ListEnvironment(ENV, seed=0)
    _, state, cands, _ = _request(env, np.random.default_rng(5))
    actions = np.stack([a for _, a in cands])
    top, q = ranker.top_m(state, actions, None)
    reranker = ranker.reranker
    best = reranker.rerank(state, actions[top], q, ENV.list_size, sample_seed=9).order
    greedy_only = GeReranker(RerankerConfig(top_m=8), GEN, CATEGORIES)
    served = reranker.served
    assert served is not None
    greedy_only.set_weights(served.flat, served.layout, served.version)
    greedy = greedy_only.rerank(state, actions[top], q, ENV.list_size).order
    request = reranker._inputs(state, actions[top], q, ENV.list_size, None).tensors()
    scores = _reward(request.repeat(2), torch.tensor([best, greedy]))
    assert float(scores[0]) >= float(scores[1])
    with pytest.raises(ValueError, match="best_of_k=3 needs a reward"):
        GeReranker(RerankerConfig(best_of_k=3), GEN, CATEGORIES)


@pytest.mark.parametrize("m,n", [(12, 5), (50, 10), (3, 3)])
def test_numpy_greedy_decoder_gives_the_torch_generators_lists(m: int, n: int) -> None:
    rng = np.random.default_rng(m)
    for seed in range(4):
        module = PointerGenerator(GEN, seed=seed)
        decoder = GreedyPointerDecoder(flatten(module), layout_of(module))
        for r in range(5):
            state = rng.standard_normal(STATE_DIM).astype(np.float32)
            actions = rng.standard_normal((m, ACTION_DIM)).astype(np.float32)
            actions[:, -2] = rng.integers(0, 3, size=m)  # few shops/types: the dynamic features matter
            actions[:, -1] = rng.integers(0, 2, size=m)
            scores = rng.standard_normal(m).astype(np.float32)
            pinned = None if r % 2 else int(rng.integers(m))
            shop, item_type = CATEGORIES(actions)
            mine = decoder.decode(state, actions, scores, shop, item_type, n, pinned)
            request = RequestTensors(torch.from_numpy(state)[None], torch.from_numpy(actions)[None],
                                     torch.from_numpy(shop)[None], torch.from_numpy(item_type)[None],
                                     torch.from_numpy(scores)[None], torch.tensor([-1 if pinned is None else pinned]))
            with torch.no_grad():
                theirs, _ = module.decode(request, n, sample=False)
            assert mine == theirs[0].tolist()


# --- weights -----------------------------------------------------------------------------------------
def test_apply_weights_routes_by_model_id_and_refuses_a_foreign_architecture() -> None:
    ranker = _ranker()
    assert ranker.version == 1
    new_gen = initial_generator_record("ge", GEN, seed=99, created_at=T0, version=2)
    assert ranker.apply_weights(new_gen) is True
    assert ranker.apply_weights(new_gen) is False
    assert ranker.version == 2 and ranker.drn.version == 1
    drn2 = {**_drn_record(seed=5), "version": 2}
    assert ranker.apply_weights(drn2) is True
    assert ranker.drn.version == 2 and ranker.version == 2
    other = GeneratorConfig(**{**GEN.__dict__, "hidden": 8})
    bad = initial_generator_record("ge", other, seed=1, created_at=T0, version=3)
    with pytest.raises(WeightsError, match="is not the served generator's"):
        ranker.apply_weights(bad)
    assert ranker.version == 2
    assert generator_architecture(GEN) in new_gen["architecture"]
    with pytest.raises(ValueError, match="is not this re-ranker's 'ge'"):
        ranker.reranker.apply_weights({**new_gen, "model_id": "other"})


def test_not_ready_and_bad_configs_say_what_is_wrong() -> None:
    drn = Ranker(RankerConfig(model_id="drn"))
    rr = RerankingRanker(drn, GeReranker(RerankerConfig(), GEN, CATEGORIES))
    with pytest.raises(RankerNotReady):
        rr.rank("r", "u", T0, np.zeros(STATE_DIM), [("a", np.zeros(ACTION_DIM))], 1)
    with pytest.raises(ValueError, match="top_m must be >= 1"):
        RerankerConfig(top_m=0)
    with pytest.raises(ValueError, match="alpha must be a finite number >= 0"):
        RerankerConfig(alpha=float("nan"))
    with pytest.raises(ValueError, match="different model_ids"):
        RerankingRanker(Ranker(RankerConfig(model_id="ge")), GeReranker(RerankerConfig(), GEN, CATEGORIES))
    with pytest.raises(ValueError, match="categories give 1 shops / 1 types"):
        GeReranker(RerankerConfig(), GEN, ColumnCategories())
    with pytest.raises(ValueError, match=r"column 8 \(shop id\) must hold ids in \[0, 10\)"):
        ColumnCategories(shop_column=8, n_shops=10)(np.full((2, ACTION_DIM), 12.0, dtype=np.float32))


# --- DBGD on the generator through the in-memory loop ------------------------------------------------
@dataclass
class _Step:
    impression: dict[str, Any]
    clicks: list[dict[str, Any]]


class _ListEnvSimulator:
    """ListEnvironment requests ranked by the reranking ranker, clicks sampled from the true list model
    (sequence effects included); the `run(n)` shape drnflow.demo.inmemory.run_loop drives."""

    def __init__(self, env: ListEnvironment, ranker: RerankingRanker, seed: int, gap_ms: int) -> None:
        self.env, self.ranker, self.gap_ms = env, ranker, gap_ms
        self.req_rng, self.click_rng = (np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(2))
        self.steps = 0

    def run(self, n: int) -> Iterator[_Step]:
        for _ in range(n):
            user, state, cands, pinned = _request(self.env, self.req_rng)
            request_id = f"ge-{self.steps:06d}"
            event_time = T0 + self.steps * self.gap_ms
            self.steps += 1
            imp = self.ranker.rank(request_id, str(user), event_time, state, cands, ENV.list_size,
                                   pinned=cands[pinned][0] if pinned >= 0 else None)
            items = np.array([[int(s["item_id"]) for s in imp["slots"]]])
            clicked = self.env.sample_clicks(user, items, self.click_rng)[0]
            yield _Step(imp, [{"request_id": request_id, "item_id": s["item_id"], "event_time": event_time + 1}
                              for s, c in zip(imp["slots"], clicked, strict=True) if c])


def test_dbgd_moves_the_generator_weights_after_wins_through_the_loop() -> None:
    window_ms, per_window = 60_000, 30
    ranker = _ranker(alpha=0.5, round_ms=window_ms)
    gen_major = initial_generator_record("ge", GEN, seed=3, created_at=T0)
    learner = DbgdLearner("ge", DbgdConfig(alpha=0.5, eta=0.5, max_update_norm_ratio=float("inf")))
    learner.rebase(gen_major)
    drn_before = ranker.drn.served
    served_before = ranker.reranker.served
    assert drn_before is not None and served_before is not None
    initial = served_before.flat.copy()

    decisions: list[tuple[dict[int, Any], Sequence[Mapping[str, Any]], WindowResult]] = []
    on_window = learner.on_window

    def spy(rows: Sequence[Mapping[str, Any]]) -> WindowResult:
        history = {v: w.copy() for v, w in learner._history.items()}
        result = on_window(rows)
        decisions.append((history, rows, result))
        return result

    learner.on_window = spy  # type: ignore[method-assign]
    sim = _ListEnvSimulator(ListEnvironment(ENV, seed=0), ranker, seed=4, gap_ms=window_ms // per_window)
    stats = run_loop(sim, cast(Ranker, ranker), learner, impressions=8 * per_window, window_ms=window_ms)

    assert stats.impressions == 8 * per_window and stats.clicks > 0
    accepted = [d for d in decisions if d[2].weights is not None]
    assert accepted, "some window's perturbed generator should win"
    for history, rows, result in decisions:
        assert {r["model_id"] for r in rows} == {"ge"}
        for row in rows:  # the seed on the rows is the generator's explore seed of its (version, round)
            rnd = round_index(row["window_start"], window_ms)
            assert [row["explore_seed"]] == explore_seeds_for(0, row["model_version"], rnd, 1)
        wins = [r for r in result.win_rates if r["decision"] == "ACCEPT"]
        assert bool(wins) == (result.weights is not None)
        assert all(r["explore_wins"] > r["current_wins"] for r in wins)
        if result.weights is not None:  # W <- W + eta * mean ΔW(seed; W_base) over the accepted rows
            base = history[result.weights["parent_version"]]
            step = np.mean([explore_delta(history[r["model_version"]], r["explore_seed"], 0.5) for r in wins],
                           axis=0)
            new = np.frombuffer(result.weights["weights"], dtype="<f4")
            np.testing.assert_allclose(new, base + 0.5 * step, rtol=1e-5, atol=1e-6)
    final = ranker.reranker.served
    assert final is not None and final.version == 1 + len(accepted)
    assert not np.allclose(final.flat, initial)
    assert ranker.drn.served is drn_before, "the DRN network is not tuned by the generator's rows"


def test_movielens_categories_read_decade_and_first_genre() -> None:
    from models.ge.catalog_movielens import YEAR_COLUMN, MovieLensCategories
    from models.simulator.movielens import GENRES

    actions = np.zeros((3, len(GENRES) + 13), dtype=np.float32)
    actions[0, [3, 7]] = 1.0  # Children's, Drama
    actions[0, YEAR_COLUMN] = (1995 - 1990) / 10
    actions[1, 4] = 1.0  # Comedy
    actions[1, YEAR_COLUMN] = (1931 - 1990) / 10
    actions[2, YEAR_COLUMN] = (1901 - 1990) / 10  # no genre, before the 1920s
    shop, item_type = MovieLensCategories()(actions)
    assert item_type.tolist() == [3, 4, len(GENRES) - 1]
    assert shop.tolist() == [7, 1, 0]
    gen = GeneratorConfig(item_dim=actions.shape[1], user_dim=4, n_shops=8, n_types=len(GENRES))
    GeReranker(RerankerConfig(), gen, MovieLensCategories())  # the sizes agree with a generator built for it
