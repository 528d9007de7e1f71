"""A seeded list environment where a list's value depends on its order and mix, not only its items.

Items have a feature vector, a shop and a type. A user's click probability on the item at position k
is `attention[k] * sigmoid(logit)`, where `logit` is the item's base attractiveness for the user, minus
fatigue for each earlier item of the same shop and of the same type, minus a penalty when the previous
item is from the same shop, plus a pair effect between the previous item's type and this one's.
Clicks are independent given the list, so the expected clicks of a list are the exact sum of these
probabilities: every generator can be scored against the truth, not only against a learned evaluator.

Two more per-position objectives (Kuaishou's multi-objective evaluator; `ObjectiveConfig`) are built to
disagree with clicks, each with an exact expectation too (`objective_probs`):

- long view: a clicked item is watched past a dwell threshold with probability `completion` =
  sigmoid(completion_bias + a second user-item affinity - clickbait * the item's hidden click bias).
  The affinity reads the same user latent through another projection, so tastes for clicking and for
  finishing differ; items with a high click bias ("clickbait") get clicked but abandoned.
  P(long view at k) = P(click at k) * completion[k].
- continue: after position k the user leaves with hazard sigmoid(leave_bias - leave_sensitivity *
  (mean completion of positions 0..k - satisfaction_center)): unsatisfying early items make the user
  leave, whatever was clicked. P(continue at k) = prod over j <= k of (1 - hazard[j]), and the sampled
  labels are 1 up to the position the user leaves at, 0 from there.

Their hidden parameters and samples come from their own seeded streams, so clicks, catalogs, requests and
logs of every existing seed are unchanged; the long-view and continue labels do not gate the clicks.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float32]
IntArray = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Catalog:
    """Items as any source can provide them (synthetic here, MovieLens later): features, shop, type."""

    features: FloatArray  # (n_items, item_dim)
    shop: IntArray  # (n_items,) in [0, n_shops)
    item_type: IntArray  # (n_items,) in [0, n_types)

    def __post_init__(self) -> None:
        if self.features.ndim != 2 or self.features.shape[0] == 0:
            raise ValueError(f"Catalog.features must be (n_items, dim), got {self.features.shape}")
        n = self.features.shape[0]
        for name in ("shop", "item_type"):
            arr = getattr(self, name)
            if arr.shape != (n,):
                raise ValueError(f"Catalog.{name} must have shape ({n},), got {arr.shape}")
            if arr.min() < 0:
                raise ValueError(f"Catalog.{name} ids must be >= 0")
        if not np.isfinite(self.features).all():
            raise ValueError("Catalog.features must be finite")

    @property
    def n_items(self) -> int:
        return int(self.features.shape[0])

    @property
    def item_dim(self) -> int:
        return int(self.features.shape[1])

    @property
    def n_shops(self) -> int:
        return int(self.shop.max()) + 1

    @property
    def n_types(self) -> int:
        return int(self.item_type.max()) + 1


@dataclass(frozen=True)
class EnvConfig:
    """Sizes and the strengths of the sequence effects (all logits unless said otherwise)."""

    n_users: int = 2000
    n_items: int = 3000
    n_shops: int = 40
    n_types: int = 6
    item_dim: int = 16
    user_dim: int = 8
    latent_dim: int = 8
    candidates: int = 50  # M
    list_size: int = 10  # N
    base_bias: float = -3.5
    affinity_scale: float = 2.0
    item_bias_std: float = 0.5
    attention_decay: float = 0.08  # attention[k] = exp(-decay * k)
    shop_fatigue: float = 0.5  # per earlier item of the same shop
    type_fatigue: float = 0.3  # per earlier item of the same type
    adjacent_shop_penalty: float = 0.7  # previous item from the same shop
    pair_scale: float = 0.6  # std of the previous-type -> this-type effect
    ranker_noise: float = 0.6  # std of the upstream ranker's error on the base logit
    user_feature_noise: float = 0.3
    retrieval_pool: int = 3  # candidates are the top M by ranker score of pool*M random items
    trigger_prob: float = 0.5  # share of requests that come with a pinned trigger item

    def __post_init__(self) -> None:
        for name in ("n_users", "n_items", "n_shops", "n_types", "item_dim", "user_dim", "latent_dim",
                     "list_size", "retrieval_pool"):
            if getattr(self, name) < 1:
                raise ValueError(f"EnvConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 2 <= self.list_size <= self.candidates:
            raise ValueError(f"EnvConfig needs 2 <= list_size <= candidates, got {self.list_size} "
                             f"and {self.candidates}")
        if self.candidates * self.retrieval_pool > self.n_items:
            raise ValueError("EnvConfig.candidates * retrieval_pool must be <= n_items")
        for name in ("affinity_scale", "item_bias_std", "attention_decay", "shop_fatigue", "type_fatigue",
                     "adjacent_shop_penalty", "pair_scale", "ranker_noise", "user_feature_noise"):
            if getattr(self, name) < 0:
                raise ValueError(f"EnvConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.trigger_prob <= 1.0:
            raise ValueError(f"EnvConfig.trigger_prob must be in [0, 1], got {self.trigger_prob}")


OBJECTIVES = ("click", "long_view", "continue")
_OBJECTIVE_STREAM = 17  # the objectives' parameters and labels draw from (seed, this), never from the clicks' rng


@dataclass(frozen=True)
class ObjectiveConfig:
    """Strengths of the long-view and continue models (logits unless said otherwise)."""

    completion_bias: float = 0.0  # sets the share of clicks that become long views (the dwell quantile)
    completion_scale: float = 2.0  # strength of the user-item completion affinity
    clickbait: float = 1.5  # per std of the item's hidden click bias, subtracted from completion
    leave_bias: float = -2.5
    leave_sensitivity: float = 8.0  # per unit of mean completion so far
    satisfaction_center: float = 0.5  # mean completion at which the hazard is sigmoid(leave_bias)

    def __post_init__(self) -> None:
        for name in ("completion_scale", "clickbait", "leave_sensitivity"):
            if getattr(self, name) < 0:
                raise ValueError(f"ObjectiveConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not 0.0 <= self.satisfaction_center <= 1.0:
            raise ValueError(f"ObjectiveConfig.satisfaction_center must be in [0, 1], got "
                             f"{self.satisfaction_center}")


@dataclass(frozen=True)
class RequestBatch:
    """B re-ranking requests: a user and M candidates each, with what the ranker knows about them."""

    request_time: IntArray  # (B,) increasing: logs split by it
    user: IntArray  # (B,)
    user_features: FloatArray  # (B, user_dim)
    candidates: IntArray  # (B, M) item ids
    item_features: FloatArray  # (B, M, item_dim)
    shop: IntArray  # (B, M)
    item_type: IntArray  # (B, M)
    ranker_score: FloatArray  # (B, M): the upstream ranker's per-item score
    pinned: IntArray  # (B,) candidate index forced to position 0, or -1

    def __len__(self) -> int:
        return int(self.user.shape[0])

    @property
    def n_candidates(self) -> int:
        return int(self.candidates.shape[1])

    def take(self, index: npt.ArrayLike) -> RequestBatch:
        idx = np.asarray(index)
        return RequestBatch(**{name: getattr(self, name)[idx] for name in self.__dataclass_fields__})

    def repeat(self, k: int) -> RequestBatch:
        """Each request k times in a row (k lists scored for one request)."""
        return self.take(np.repeat(np.arange(len(self)), k))


@dataclass(frozen=True)
class LoggedLists:
    """Exposures of the logging policy: the requests, the N candidate indices shown, and the clicks;
    `long_views` and `continues` only when the log was made with the other objectives."""

    requests: RequestBatch
    shown: IntArray  # (B, N) indices into the candidates
    clicks: npt.NDArray[np.float32]  # (B, N) 0/1
    long_views: npt.NDArray[np.float32] | None = None  # (B, N) 0/1, 1 only where clicked
    continues: npt.NDArray[np.float32] | None = None  # (B, N) 0/1, non-increasing along the list

    def __len__(self) -> int:
        return len(self.requests)

    def take(self, index: npt.ArrayLike) -> LoggedLists:
        idx = np.asarray(index)
        return LoggedLists(self.requests.take(idx), self.shown[idx], self.clicks[idx],
                           None if self.long_views is None else self.long_views[idx],
                           None if self.continues is None else self.continues[idx])

    def labels(self, objective: str) -> npt.NDArray[np.float32]:
        """The (B, N) labels of one of OBJECTIVES; ValueError when this log has none."""
        found = {"click": self.clicks, "long_view": self.long_views, "continue": self.continues}
        if objective not in found:
            raise ValueError(f"unknown objective {objective!r}: one of {', '.join(OBJECTIVES)}")
        labels = found[objective]
        if labels is None:
            raise ValueError(f"this log has no {objective} labels (log it with log_multi_objective_exposures)")
        return labels


def synthetic_catalog(config: EnvConfig, rng: np.random.Generator) -> Catalog:
    """Items cluster by shop and by type in feature space, so one user's best items crowd into few shops."""
    shop_centroids = rng.standard_normal((config.n_shops, config.item_dim))
    type_centroids = rng.standard_normal((config.n_types, config.item_dim))
    shop = rng.integers(0, config.n_shops, size=config.n_items)
    item_type = rng.integers(0, config.n_types, size=config.n_items)
    noise = rng.standard_normal((config.n_items, config.item_dim))
    features = 0.8 * shop_centroids[shop] + 0.6 * type_centroids[item_type] + 0.5 * noise
    return Catalog(features.astype(np.float32), shop.astype(np.int64), item_type.astype(np.int64))


class ListEnvironment:
    """Users, a catalog and the true (hidden) list click model; `expected_clicks` is exact.

    Pass `catalog` to use real items (e.g. MovieLens: genre as type, studio or any grouping as shop);
    the config's catalog sizes (n_items, n_shops, n_types, item_dim) then only apply to synthetic ones.
    `objectives` sets the long-view and continue models (module docstring); they never change the clicks."""

    def __init__(self, config: EnvConfig, seed: int, catalog: Catalog | None = None,
                 objectives: ObjectiveConfig | None = None) -> None:
        rng = np.random.default_rng(seed)
        self.config = config
        self.catalog = catalog if catalog is not None else synthetic_catalog(config, rng)
        cat = self.catalog
        if cat.n_items < config.candidates * config.retrieval_pool:
            raise ValueError("catalog has fewer items than candidates * retrieval_pool")
        # Hidden latent space: item latents are a fixed projection of their (standardised) features.
        feats = (cat.features - cat.features.mean(0)) / (cat.features.std(0) + 1e-6)
        proj = rng.standard_normal((cat.item_dim, config.latent_dim)) / np.sqrt(cat.item_dim)
        self._item_latent = (feats @ proj).astype(np.float64)
        self._item_bias = rng.normal(0.0, config.item_bias_std, size=cat.n_items)
        self._user_latent = rng.standard_normal((config.n_users, config.latent_dim))
        user_proj = rng.standard_normal((config.latent_dim, config.user_dim)) / np.sqrt(config.latent_dim)
        user_noise = rng.normal(0.0, config.user_feature_noise, size=(config.n_users, config.user_dim))
        self.user_features = (self._user_latent @ user_proj + user_noise).astype(np.float32)
        pair = rng.normal(0.0, config.pair_scale, size=(cat.n_types, cat.n_types))
        np.fill_diagonal(pair, 0.0)  # same-type repeats are the fatigue term's job
        self.pair_effect = pair
        self.attention = np.exp(-config.attention_decay * np.arange(config.candidates))
        # The other objectives: a separate stream, after everything above, so no existing draw moves.
        self.seed = seed
        self.objectives = objectives if objectives is not None else ObjectiveConfig()
        orng = np.random.default_rng((seed, _OBJECTIVE_STREAM))
        q_proj = orng.standard_normal((cat.item_dim, config.latent_dim)) / np.sqrt(cat.item_dim)
        self._item_completion_latent = (feats @ q_proj).astype(np.float64)
        user_mix = orng.standard_normal((config.latent_dim, config.latent_dim)) / np.sqrt(config.latent_dim)
        self._user_completion_latent = self._user_latent @ user_mix  # same user, another taste
        std = float(self._item_bias.std())
        self._item_bait = self._item_bias / std if std > 0 else np.zeros_like(self._item_bias)

    # ---- truth -------------------------------------------------------------------------------------

    def base_logit(self, user: npt.ArrayLike, items: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Attractiveness of items (..., K) for users (...,) on their own, with no list context."""
        u = np.asarray(user)
        it = np.asarray(items)
        affinity = np.einsum("...d,...kd->...k", self._user_latent[u], self._item_latent[it])
        scale = self.config.affinity_scale / np.sqrt(self.config.latent_dim)
        return self.config.base_bias + scale * affinity + self._item_bias[it]

    def click_probs(self, user: npt.ArrayLike, item_lists: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """P(click) at each position of lists (B, N) of item ids shown to users (B,)."""
        items = np.atleast_2d(np.asarray(item_lists))
        users = np.atleast_1d(np.asarray(user))
        c = self.config
        n = items.shape[1]
        shop = self.catalog.shop[items]
        itype = self.catalog.item_type[items]
        earlier = np.tril(np.ones((n, n), dtype=bool), k=-1)  # [k, j]: j before k
        same_shop_before = ((shop[:, :, None] == shop[:, None, :]) & earlier).sum(-1)
        same_type_before = ((itype[:, :, None] == itype[:, None, :]) & earlier).sum(-1)
        adjacent_shop = np.zeros(items.shape)
        adjacent_shop[:, 1:] = shop[:, 1:] == shop[:, :-1]
        pair = np.zeros(items.shape)
        pair[:, 1:] = self.pair_effect[itype[:, :-1], itype[:, 1:]]
        logit = (self.base_logit(users, items) - c.shop_fatigue * same_shop_before
                 - c.type_fatigue * same_type_before - c.adjacent_shop_penalty * adjacent_shop + pair)
        attention = np.exp(-c.attention_decay * np.arange(n))
        return attention / (1.0 + np.exp(-logit))

    def expected_clicks(self, user: npt.ArrayLike, item_lists: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Exact expected clicks of each list: the sum of its position click probabilities."""
        return self.click_probs(user, item_lists).sum(-1)

    def completion_probs(self, user: npt.ArrayLike, item_lists: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """P(long view | click) of items (B, N) for users (B,): no list context, clickbait abandoned."""
        items = np.atleast_2d(np.asarray(item_lists))
        users = np.atleast_1d(np.asarray(user))
        o = self.objectives
        affinity = np.einsum("bd,bkd->bk", self._user_completion_latent[users],
                             self._item_completion_latent[items])
        logit = (o.completion_bias + o.completion_scale / np.sqrt(self.config.latent_dim) * affinity
                 - o.clickbait * self._item_bait[items])
        return 1.0 / (1.0 + np.exp(-logit))

    def leave_hazard(self, user: npt.ArrayLike, item_lists: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """P(the user leaves right after position k | still there), from the mean completion so far."""
        completion = self.completion_probs(user, item_lists)
        so_far = np.cumsum(completion, axis=1) / np.arange(1, completion.shape[1] + 1)
        o = self.objectives
        return 1.0 / (1.0 + np.exp(-(o.leave_bias - o.leave_sensitivity * (so_far - o.satisfaction_center))))

    def objective_probs(self, user: npt.ArrayLike, item_lists: npt.ArrayLike) -> dict[str, npt.NDArray[np.float64]]:
        """Exact P(objective at each position) (B, N) for each of OBJECTIVES."""
        click = self.click_probs(user, item_lists)
        return {"click": click, "long_view": click * self.completion_probs(user, item_lists),
                "continue": np.cumprod(1.0 - self.leave_hazard(user, item_lists), axis=1)}

    def expected_objectives(self, user: npt.ArrayLike,
                            item_lists: npt.ArrayLike) -> dict[str, npt.NDArray[np.float64]]:
        """Exact expected count per list (B,) of each objective: expected clicks, long views, continues."""
        return {name: p.sum(-1) for name, p in self.objective_probs(user, item_lists).items()}

    def sample_objectives(self, user: npt.ArrayLike, item_lists: npt.ArrayLike, clicks: npt.ArrayLike,
                          rng: np.random.Generator) -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
        """Long-view and continue labels (B, N) given the sampled clicks; exact in expectation."""
        click = np.asarray(clicks, dtype=np.float32)
        completion = self.completion_probs(user, item_lists)
        long_views = click * (rng.random(completion.shape) < completion)
        leaves = rng.random(completion.shape) < self.leave_hazard(user, item_lists)
        continues = np.cumprod(~leaves, axis=1)
        return long_views.astype(np.float32), continues.astype(np.float32)

    def sample_clicks(self, user: npt.ArrayLike, item_lists: npt.ArrayLike,
                      rng: np.random.Generator) -> npt.NDArray[np.float32]:
        probs = self.click_probs(user, item_lists)
        return (rng.random(probs.shape) < probs).astype(np.float32)

    # ---- requests and logs -------------------------------------------------------------------------

    def make_requests(self, n: int, rng: np.random.Generator, start_time: int = 0) -> RequestBatch:
        """n requests: a random user, the top M of a random pool by (noisy) ranker score, maybe a trigger."""
        c = self.config
        m, pool = c.candidates, c.candidates * c.retrieval_pool
        users = rng.integers(0, c.n_users, size=n)
        pools = np.concatenate([  # pool random distinct items per request, in chunks to bound memory
            np.argpartition(rng.random((min(1024, n - s), self.catalog.n_items)), pool - 1, axis=1)[:, :pool]
            for s in range(0, n, 1024)
        ]) if n else np.zeros((0, pool), dtype=np.int64)
        score = self.base_logit(users, pools) + rng.normal(0.0, c.ranker_noise, size=pools.shape)
        top = np.argsort(-score, axis=1, kind="stable")[:, :m]
        candidates = np.take_along_axis(pools, top, axis=1)
        ranker_score = np.take_along_axis(score, top, axis=1).astype(np.float32)
        has_trigger = rng.random(n) < c.trigger_prob
        pinned = np.where(has_trigger, rng.integers(0, m, size=n), -1)
        return RequestBatch(
            request_time=np.arange(start_time, start_time + n, dtype=np.int64),
            user=users.astype(np.int64),
            user_features=self.user_features[users],
            candidates=candidates.astype(np.int64),
            item_features=self.catalog.features[candidates],
            shop=self.catalog.shop[candidates],
            item_type=self.catalog.item_type[candidates],
            ranker_score=ranker_score,
            pinned=pinned.astype(np.int64),
        )

    def item_lists(self, requests: RequestBatch, lists: npt.ArrayLike) -> IntArray:
        """Candidate indices (B, N) to item ids (B, N)."""
        return np.take_along_axis(requests.candidates, np.asarray(lists, dtype=np.int64), axis=1)

    def true_value(self, requests: RequestBatch, lists: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Exact expected clicks of lists given as candidate indices."""
        return self.expected_clicks(requests.user, self.item_lists(requests, lists))

    def true_objective_values(self, requests: RequestBatch,
                              lists: npt.ArrayLike) -> dict[str, npt.NDArray[np.float64]]:
        """Exact expected count per objective of lists given as candidate indices."""
        return self.expected_objectives(requests.user, self.item_lists(requests, lists))


def noisy_greedy_lists(requests: RequestBatch, list_size: int, temperature: float,
                       rng: np.random.Generator) -> IntArray:
    """The logging policy: sort by ranker score plus Gumbel noise, pinned item first."""
    gumbel = -np.log(-np.log(rng.random(requests.ranker_score.shape) + 1e-12) + 1e-12)
    key = requests.ranker_score + temperature * gumbel
    rows = np.arange(len(requests))
    has_pin = requests.pinned >= 0
    key[rows[has_pin], requests.pinned[has_pin]] = np.inf
    return np.argsort(-key, axis=1, kind="stable")[:, :list_size].astype(np.int64)


def log_exposures(env: ListEnvironment, n: int, seed: int, temperature: float = 0.7) -> LoggedLists:
    """n logged exposures of the noisy-greedy logging policy with sampled clicks, in time order."""
    rng = np.random.default_rng(seed)
    requests = env.make_requests(n, rng)
    shown = noisy_greedy_lists(requests, env.config.list_size, temperature, rng)
    clicks = env.sample_clicks(requests.user, env.item_lists(requests, shown), rng)
    return LoggedLists(requests, shown, clicks)


def log_multi_objective_exposures(env: ListEnvironment, n: int, seed: int,
                                  temperature: float = 0.7) -> LoggedLists:
    """`log_exposures` (the same requests, lists and clicks) with long-view and continue labels drawn from
    their own stream (seed, _OBJECTIVE_STREAM)."""
    log = log_exposures(env, n, seed, temperature)
    rng = np.random.default_rng((seed, _OBJECTIVE_STREAM))
    long_views, continues = env.sample_objectives(log.requests.user, env.item_lists(log.requests, log.shown),
                                                  log.clicks, rng)
    return LoggedLists(log.requests, log.shown, log.clicks, long_views, continues)


def split_by_time(log: LoggedLists, train_fraction: float) -> tuple[LoggedLists, LoggedLists]:
    """Train on the earlier requests, hold out the later ones."""
    if not 0.0 < train_fraction < 1.0:
        raise ValueError(f"train_fraction must be in (0, 1), got {train_fraction}")
    order = np.argsort(log.requests.request_time, kind="stable")
    cut = round(len(log) * train_fraction)
    return log.take(order[:cut]), log.take(order[cut:])
