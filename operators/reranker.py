"""GE re-ranking in the serving path: the DRN ranker's current network picks the top M candidates, the
pointer-network generator (models/ge/pointer_generator.py) orders N of them, and the shown list interleaves the
current generator's list with the list of a perturbed generator W~ = W + ΔW(seed), so the generator is
tuned online by the same minor-update job (DBGD on its own `model_id`) as the DRN network.

The Impression of a re-ranked request is the generator's: `model_id` / `model_version` are the
generator's, `explore_seed` is the generator's explore seed (same rule as operators/ranker.py:
`explore_seeds_for(base_seed, version, round)`, interleaving coins from `request_rng`), `generator`
names the decoding (e.g. "pointer-greedy"). DRN does not explore on re-ranked traffic: one impression
credits one model.

Generator inputs come from the DRN features: user features = the DRN state, item features = the DRN
action features, ranker score = the DRN Q of the current network, and the two categorical inputs the
generator embeds (shop, type) are read from the action features by a `CategoryMap` (ColumnCategories
here; models/ge/catalog_movielens.py for MovieLens). The generator is built with those dimensions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import torch

from models.ge.pointer_generator import GeneratorConfig, PointerGenerator
from models.ge.tensors import RequestTensors
from models.interleave import Method, Pick, interleave
from models.perturbation import Perturbation, without_explore
from models.weights import (
    FlatWeights,
    Layout,
    ParamSpec,
    WeightsError,
    flatten,
    layout_of,
    make_model_weights_record,
    split,
    unflatten_into,
)
from operators.ranker import (
    DEFAULT_ROUND_MS,
    Ranker,
    RankerNotReady,
    request_rng,
    round_index,
)
from operators.served import ServedWeights, check_explore_settings, serving_method
from schemas.records import impression_record

GE_FAMILY = "ge-pointer"
IntArray = npt.NDArray[np.int64]
#: Scores K lists of one request repeated K times (models.ge.utilities.ListReward fits).
ListScore = Callable[[RequestTensors, torch.Tensor], torch.Tensor]


# --- architecture and the initial version ---------------------------------------------------------
def generator_architecture(config: GeneratorConfig) -> str:
    """The `architecture` string of a generator's ModelWeights records."""
    return json.dumps({"family": GE_FAMILY, **asdict(config)}, sort_keys=True)


def generator_config_from_architecture(text: str) -> GeneratorConfig:
    d = without_explore(json.loads(text))
    if d.pop("family", None) != GE_FAMILY:
        raise ValueError(f"architecture is not a {GE_FAMILY} generator: {text}")
    return GeneratorConfig(**d)


def initial_generator_record(
    model_id: str, config: GeneratorConfig, seed: int, created_at: int, version: int = 1
) -> dict[str, Any]:
    """A seeded (untrained) generator as a MAJOR ModelWeights record; a trained one goes the same way."""
    return generator_record(model_id, PointerGenerator(config, seed=seed), version, created_at)


def generator_record(
    model_id: str, generator: PointerGenerator, version: int, created_at: int
) -> dict[str, Any]:
    """A generator module (e.g. from `drnflow ge train`'s checkpoint) as a MAJOR ModelWeights record."""
    return make_model_weights_record(
        model_id=model_id, version=version, parent_version=None, kind="MAJOR", flat=flatten(generator),
        layout=layout_of(generator), created_at=created_at, explore_seeds=[],
        architecture=generator_architecture(generator.config),
    )


# --- features ------------------------------------------------------------------------------------
class CategoryMap(Protocol):
    """Reads the generator's categorical inputs (shop, type ids) from DRN action features (M, A)."""

    @property
    def n_shops(self) -> int: ...

    @property
    def n_types(self) -> int: ...

    def __call__(self, actions: npt.NDArray[np.float32]) -> tuple[IntArray, IntArray]: ...


@dataclass(frozen=True)
class ColumnCategories:
    """Shop and type ids stored as (float) columns of the action features; a None column means one
    category for all items (the generator then learns from the dense features alone)."""

    shop_column: int | None = None
    type_column: int | None = None
    n_shops: int = 1
    n_types: int = 1

    def __post_init__(self) -> None:
        if self.n_shops < 1 or self.n_types < 1:
            raise ValueError(f"ColumnCategories needs n_shops, n_types >= 1, got {self.n_shops}, {self.n_types}")
        for name in ("shop_column", "type_column"):
            col = getattr(self, name)
            if col is not None and col < 0:
                raise ValueError(f"ColumnCategories.{name} must be >= 0 or None, got {col}")

    def __call__(self, actions: npt.NDArray[np.float32]) -> tuple[IntArray, IntArray]:
        return (_ids(actions, self.shop_column, self.n_shops, "shop"),
                _ids(actions, self.type_column, self.n_types, "type"))


def _ids(actions: npt.NDArray[np.float32], column: int | None, n: int, what: str) -> IntArray:
    if column is None:
        return np.zeros(actions.shape[0], dtype=np.int64)
    ids = np.rint(actions[:, column]).astype(np.int64)
    if ids.size and (ids.min() < 0 or ids.max() >= n):
        raise ValueError(f"action feature column {column} ({what} id) must hold ids in [0, {n}), "
                         f"got [{ids.min()}, {ids.max()}]")
    return ids


# --- greedy decoding without torch overhead ---------------------------------------------------------
class GreedyPointerDecoder:
    """PointerGenerator.decode(sample=False) for one request in numpy, from the flat weights: the serving
    path's greedy list at a fraction of torch's per-op cost (B = 1, ~30 small ops per step). It mirrors
    models/ge/pointer_generator.py op for op; tests/unit/test_reranker.py pins that both give the same lists."""

    def __init__(self, flat: FlatWeights, layout: Sequence[ParamSpec]) -> None:
        w = {name: np.ascontiguousarray(v, dtype=np.float32) for name, v in split(flat, layout).items()}
        self.shop_emb, self.type_emb = w["shop_emb.weight"], w["type_emb.weight"]
        self.phi = [(w[f"phi.{i}.weight"].T.copy(), w[f"phi.{i}.bias"]) for i in (0, 2)]
        self.rho = [(w[f"rho.{i}.weight"].T.copy(), w[f"rho.{i}.bias"]) for i in (0, 2)]
        self.init_w, self.init_b = w["init_state.weight"].T.copy(), w["init_state.bias"]
        self.w_ih, self.w_hh = w["cell.weight_ih"].T.copy(), w["cell.weight_hh"].T.copy()
        self.b_ih, self.b_hh = w["cell.bias_ih"], w["cell.bias_hh"]
        self.key_w = w["key.weight"].T.copy()
        self.query_w, self.query_b = w["query.weight"].T.copy(), w["query.bias"]
        self.dynamic_w = w["dynamic.weight"].T.copy()
        self.score_w = w["score.weight"].reshape(-1)
        self.hidden = self.init_b.size

    def decode(self, state: npt.NDArray[np.float32], actions: npt.NDArray[np.float32],
               scores: npt.NDArray[np.float32], shop: IntArray, item_type: IntArray, n: int,
               pinned: int | None) -> list[int]:
        """The greedy list of n candidate indices (pinned first when given)."""
        m = actions.shape[0]
        rank = np.empty(m, dtype=np.float32)
        rank[np.argsort(-scores, kind="stable")] = np.arange(m, dtype=np.float32) / max(m - 1, 1)
        x = np.concatenate([actions, np.broadcast_to(state, (m, state.size)), self.shop_emb[shop],
                            self.type_emb[item_type], scores[:, None], rank[:, None]], axis=1)
        h = np.maximum(x @ self.phi[0][0] + self.phi[0][1], 0.0)
        h = np.maximum(h @ self.phi[1][0] + self.phi[1][1], 0.0)
        summary = h.mean(axis=0)
        enc = np.maximum(np.concatenate([h, np.broadcast_to(summary, h.shape)], axis=1) @ self.rho[0][0]
                         + self.rho[0][1], 0.0) @ self.rho[1][0] + self.rho[1][1]
        keys = enc @ self.key_w
        hid = np.tanh(summary @ self.init_w + self.init_b)
        same_shop = (shop[:, None] == shop[None, :]).astype(np.float32)
        same_type = (item_type[:, None] == item_type[None, :]).astype(np.float32)
        dyn = np.zeros((m, 5), dtype=np.float32)  # shop count/2, type count/2, last shop, last type, progress
        chosen = np.zeros(m, dtype=bool)
        picks: list[int] = []
        hh = self.hidden
        for step in range(n):
            dyn[:, 4] = step / max(n - 1, 1)
            logits = np.tanh(keys + (hid @ self.query_w + self.query_b) + dyn @ self.dynamic_w) @ self.score_w
            logits[chosen] = -np.inf
            pick = int(pinned) if step == 0 and pinned is not None else int(np.argmax(logits))
            picks.append(pick)
            chosen[pick] = True
            dyn[:, 0] += 0.5 * same_shop[pick]
            dyn[:, 1] += 0.5 * same_type[pick]
            dyn[:, 2] = same_shop[pick]
            dyn[:, 3] = same_type[pick]
            gi = enc[pick] @ self.w_ih + self.b_ih
            gh = hid @ self.w_hh + self.b_hh
            r = 1.0 / (1.0 + np.exp(-(gi[:hh] + gh[:hh])))
            z = 1.0 / (1.0 + np.exp(-(gi[hh:2 * hh] + gh[hh:2 * hh])))
            cand = np.tanh(gi[2 * hh:] + r * gh[2 * hh:])
            hid = (1.0 - z) * cand + z * hid
        return picks


# --- the re-ranker ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class RerankerConfig:
    """How the generator serves and explores; `alpha`/`perturbation` must equal the minor-update job's
    DbgdConfig for the generator's model_id (both rebuild W~ from the seed)."""

    model_id: str = "ge"
    top_m: int = 50
    alpha: float = 0.1
    perturbation: Perturbation = Perturbation.MULTIPLICATIVE
    interleaving: Method = Method.TEAM_DRAFT
    n_explore: int = 1
    base_seed: int = 0
    round_ms: int = DEFAULT_ROUND_MS
    tau: float = 3.0
    #: 1 = greedy decoding; K > 1 = greedy + K-1 sampled lists, the reward keeps one (needs a reward).
    best_of_k: int = 1

    def __post_init__(self) -> None:
        check_explore_settings(self, "RerankerConfig")
        if self.top_m < 1:
            raise ValueError(f"RerankerConfig.top_m must be >= 1, got {self.top_m}")
        if self.best_of_k < 1:
            raise ValueError(f"RerankerConfig.best_of_k must be >= 1, got {self.best_of_k}")

    @property
    def method(self) -> Method:
        return serving_method(self)

    @property
    def generator_name(self) -> str:
        """What the Impression's `generator` field says built the list."""
        return "pointer-greedy" if self.best_of_k == 1 else f"pointer-best-of-{self.best_of_k}"


@dataclass(frozen=True)
class ServedGenerator:
    """One applied ModelWeights version of the generator."""

    model_id: str
    version: int
    flat: FlatWeights
    layout: Layout
    checksum: str
    module: PointerGenerator
    decoder: GreedyPointerDecoder


class _Inputs(NamedTuple):
    """One request's generator inputs as numpy (the greedy decoder's) and, on demand, torch."""

    state: npt.NDArray[np.float32]
    actions: npt.NDArray[np.float32]
    scores: npt.NDArray[np.float32]
    shop: IntArray
    item_type: IntArray
    pinned: int | None

    def tensors(self) -> RequestTensors:
        return RequestTensors(
            user_features=torch.from_numpy(self.state).reshape(1, -1),
            item_features=torch.from_numpy(self.actions).unsqueeze(0),
            shop=torch.from_numpy(self.shop).reshape(1, -1),
            item_type=torch.from_numpy(self.item_type).reshape(1, -1),
            ranker_score=torch.from_numpy(self.scores).reshape(1, -1),
            pinned=torch.tensor([-1 if self.pinned is None else self.pinned], dtype=torch.long),
        )


class _Explorer(NamedTuple):
    seed: int
    module: PointerGenerator
    decoder: GreedyPointerDecoder


class Reranked(NamedTuple):
    """A re-ranked list: indices into the M candidates given, best first, and who built it."""

    order: list[int]
    generator: str


class GeReranker:
    """The served generator (and its explore perturbations), as the Ranker serves DRN: the version is
    swapped atomically by `apply_weights`; explore generators are cached per (version, round)."""

    def __init__(self, config: RerankerConfig, generator_config: GeneratorConfig, categories: CategoryMap,
                 reward: ListScore | None = None) -> None:
        if config.best_of_k > 1 and reward is None:
            raise ValueError(f"RerankerConfig.best_of_k={config.best_of_k} needs a reward (e.g. ListReward) "
                             "to choose among the lists")
        if (categories.n_shops, categories.n_types) != (generator_config.n_shops, generator_config.n_types):
            raise ValueError(
                f"categories give {categories.n_shops} shops / {categories.n_types} types, the generator "
                f"embeds {generator_config.n_shops} / {generator_config.n_types}")
        self.config = config
        self.generator_config = generator_config
        self.categories = categories
        self.reward = reward
        self._weights: ServedWeights[ServedGenerator, _Explorer] = ServedWeights(
            self._build_served, self._build_explorer)

    # --- weights -------------------------------------------------------------------------------
    @property
    def served(self) -> ServedGenerator | None:
        return self._weights.served

    @property
    def version(self) -> int | None:
        return self._weights.version

    def apply_weights(self, record: Mapping[str, Any]) -> bool:
        """Serve a decoded ModelWeights record of this generator's model_id (any kind); False when it is
        the version already served. A bad record raises (WeightsError/ValueError) and changes nothing."""
        return self._weights.apply_record(record, self.config.model_id, "re-ranker", self._check_architecture)

    def _check_architecture(self, record: Mapping[str, Any]) -> None:
        arch = str(record.get("architecture") or "")
        if arch and generator_config_from_architecture(arch) != self.generator_config:
            raise WeightsError(f"ModelWeights(model_id={record['model_id']!r}, version={record['version']}): "
                               f"architecture {arch} is not the served generator's")

    def set_weights(self, flat: npt.ArrayLike, layout: Sequence[ParamSpec], version: int) -> None:
        """Serve weights without a record (tests, bootstrap)."""
        self._weights.set(flat, layout, version)

    def _build_served(self, version: int, flat: FlatWeights, layout: Layout, checksum: str
                      ) -> ServedGenerator:
        return ServedGenerator(self.config.model_id, version, flat, layout, checksum,
                               self._module(flat, layout), GreedyPointerDecoder(flat, layout))

    def _build_explorer(self, served: ServedGenerator, seed: int, flat: FlatWeights) -> _Explorer:
        return _Explorer(seed, self._module(flat, served.layout, like=served.module),
                         GreedyPointerDecoder(flat, served.layout))

    def _module(self, flat: FlatWeights, layout: Sequence[ParamSpec], like: PointerGenerator | None = None
                ) -> PointerGenerator:
        module = copy.deepcopy(like) if like is not None else PointerGenerator(self.generator_config)
        unflatten_into(module, flat, layout)
        return module.eval()

    def explore_generators(self, event_time: int) -> list[tuple[int, PointerGenerator]]:
        """(seed, generator with W~ = W + ΔW(seed; W)) of the round of `event_time`; what rerank uses."""
        explorers = self._weights.explorers(self._require(), round_index(event_time, self.config.round_ms),
                                            self.config)
        return [(e.seed, e.module) for e in explorers]

    def _require(self) -> ServedGenerator:
        served = self._weights.served
        if served is None:
            raise RankerNotReady(f"re-ranker for model {self.config.model_id!r} has no generator weights yet")
        return served

    # --- re-ranking ----------------------------------------------------------------------------
    def rerank(self, state: npt.ArrayLike, actions: npt.ArrayLike, scores: npt.ArrayLike, n: int,
               pinned: int | None = None, *, generator: PointerGenerator | None = None,
               sample_seed: int = 0) -> Reranked:
        """N of the M candidates (DRN features `actions` (M, A), ranker `scores` (M,)) in the served
        generator's order, the `pinned` candidate index first. With `generator` (a torch module, e.g. an
        explore generator) that module decodes instead, through torch."""
        inputs = self._inputs(state, actions, scores, n, pinned)
        if generator is not None:
            order = self._decode(generator, None, inputs, n, sample_seed)
        else:
            served = self._require()
            order = self._decode(served.module, served.decoder, inputs, n, sample_seed)
        return Reranked(order, self.config.generator_name)

    def _inputs(self, state: npt.ArrayLike, actions: npt.ArrayLike, scores: npt.ArrayLike, n: int,
                pinned: int | None) -> _Inputs:
        gc = self.generator_config
        s = np.ascontiguousarray(np.asarray(state, dtype=np.float32).reshape(-1))
        a = np.ascontiguousarray(np.asarray(actions, dtype=np.float32))
        q = np.ascontiguousarray(np.asarray(scores, dtype=np.float32).reshape(-1))
        if s.size != gc.user_dim:
            raise ValueError(f"state has {s.size} values, the generator expects user_dim={gc.user_dim}")
        if a.ndim != 2 or a.shape[1] != gc.item_dim or a.shape[0] != q.size:
            raise ValueError(f"actions must be (M, {gc.item_dim}) with one score each, got {a.shape} "
                             f"and {q.size} scores")
        if not 1 <= n <= a.shape[0]:
            raise ValueError(f"list size n must be in [1, {a.shape[0]}], got {n}")
        if pinned is not None and not 0 <= pinned < a.shape[0]:
            raise ValueError(f"pinned candidate index {pinned} is not in [0, {a.shape[0]})")
        shop, item_type = self.categories(a)
        return _Inputs(s, a, q, shop, item_type, None if pinned is None else int(pinned))

    def _decode(self, module: PointerGenerator, decoder: GreedyPointerDecoder | None, inputs: _Inputs,
                n: int, sample_seed: int) -> list[int]:
        """Greedy (numpy when a decoder is given), or best of greedy + K-1 sampled lists by the reward."""
        k = self.config.best_of_k
        if k == 1 and decoder is not None:
            return decoder.decode(inputs.state, inputs.actions, inputs.scores, inputs.shop, inputs.item_type,
                                  n, inputs.pinned)
        request = inputs.tensors()
        with torch.inference_mode():
            greedy, _ = module.decode(request, n, sample=False)
            if k == 1:
                return [int(i) for i in greedy[0]]
            gen = torch.Generator().manual_seed(int(sample_seed))
            sampled, _ = module.decode(request.repeat(k - 1), n, sample=True, generator=gen)
            lists = torch.cat([greedy, sampled])
            assert self.reward is not None
            best = int(self.reward(request.repeat(k), lists).argmax())
            return [int(i) for i in lists[best]]

    def interleaved(self, request_id: str, event_time: int, state: npt.ArrayLike, actions: npt.ArrayLike,
                    scores: npt.ArrayLike, n: int, pinned: int | None = None
                    ) -> tuple[ServedGenerator, list[int], list[Pick[int]]]:
        """(served version, explore seeds, picks): the current generator's list interleaved with each
        explore generator's; picks index the M candidates, source 0 = CURRENT."""
        served = self._require()
        cfg = self.config
        rnd = round_index(event_time, cfg.round_ms)
        explorers = self._weights.explorers(served, rnd, cfg)
        inputs = self._inputs(state, actions, scores, n, pinned)
        rng = request_rng(cfg.base_seed, request_id, rnd)
        # one sampling seed per request, shared by current and explore: best-of-K compares like with like
        sample_seed = int(rng.integers(2**63)) if cfg.best_of_k > 1 else 0
        lists = [self._decode(served.module, served.decoder, inputs, n, sample_seed)]
        lists += [self._decode(e.module, e.decoder, inputs, n, sample_seed) for e in explorers]
        picks: list[Pick[int]] = interleave(cfg.method, lists, n, rng, cfg.tau)
        return served, [e.seed for e in explorers], picks


# --- DRN top-M, then the generator ----------------------------------------------------------------
class RerankingRanker:
    """The ranker process with re-ranking: DRN's current network scores every candidate, keeps the top M
    (the pinned item always among them), the generator builds the N-item list, explored by interleaving
    the current and perturbed generators. Same `rank` signature as operators.ranker.Ranker, so the
    simulator and the in-memory loop drive it unchanged; `config.model_id` is the generator's."""

    def __init__(self, drn: Ranker, reranker: GeReranker) -> None:
        if drn.config.model_id == reranker.config.model_id:
            raise ValueError(f"DRN and generator need different model_ids, both are {drn.config.model_id!r}")
        self.drn = drn
        self.reranker = reranker

    @property
    def config(self) -> RerankerConfig:
        return self.reranker.config

    @property
    def version(self) -> int | None:
        """The generator's served version (what the impressions' rows are credited to)."""
        return self.reranker.version

    def apply_weights(self, record: Mapping[str, Any]) -> bool:
        """Route a ModelWeights record to the DRN ranker or the generator by its model_id."""
        if record.get("model_id") == self.drn.config.model_id:
            return self.drn.apply_weights(record)
        return self.reranker.apply_weights(record)

    def top_m(self, state: npt.NDArray[np.float32], actions: npt.NDArray[np.float32],
              pinned: int | None) -> tuple[list[int], npt.NDArray[np.float32]]:
        """Candidate indices of DRN's top M by current Q (ties by candidate order) and their Q."""
        served = self.drn.served
        if served is None:
            raise RankerNotReady(f"ranker for model {self.drn.config.model_id!r} has no weights yet")
        q = served.scorer.q(state, actions)
        m = min(self.reranker.config.top_m, len(q))
        order = np.argsort(-q, kind="stable")
        top = [int(i) for i in order[:m]]
        if pinned is not None and pinned not in top:
            top = [*top[: m - 1], pinned]
        return top, q[top]

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int, pinned: str | None = None
             ) -> dict[str, Any]:
        """The Impression of one request: DRN top-M → generator's N = min(k, M) interleaved list;
        `pinned` (an item_id among the candidates) is shown at position 0."""
        if k < 1:
            raise ValueError(f"request {request_id}: k must be >= 1, got {k}")
        item_ids = [c[0] for c in candidates]
        if len(set(item_ids)) != len(item_ids):
            raise ValueError(f"request {request_id}: candidates repeat an item_id")
        if not item_ids:
            raise ValueError(f"request {request_id}: no candidates")
        pin_index: int | None = None
        if pinned is not None:
            if pinned not in item_ids:
                raise ValueError(f"request {request_id}: pinned item {pinned!r} is not among the candidates")
            pin_index = item_ids.index(pinned)
        state = np.asarray(state_features, dtype=np.float32).reshape(-1)
        actions = np.asarray([c[1] for c in candidates], dtype=np.float32)
        top, q = self.top_m(state, actions, pin_index)
        n = min(k, len(top))
        top_pin = None if pin_index is None else top.index(pin_index)
        served, seeds, picks = self.reranker.interleaved(
            request_id, event_time, state, actions[top], q, n, top_pin)
        cfg = self.reranker.config
        return impression_record(
            request_id=request_id,
            user_id=user_id,
            event_time=event_time,
            model_id=served.model_id,
            model_version=served.version,
            explore_seeds=seeds,
            slots=(
                (item_ids[top[p.item]], p.team.value, actions[top[p.item]].tolist(),
                 None if p.source == 0 else seeds[p.source - 1])
                for p in picks
            ),
            state_features=state.tolist(),
            interleaving=cfg.method.value,
            generator=cfg.generator_name,
        )
