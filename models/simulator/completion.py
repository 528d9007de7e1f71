"""Relevance grades for every (user, item): the real rating where there is one, a fitted model elsewhere.

A biased matrix factorisation (r ≈ μ + b_u + b_i + p_u·q_i) fitted by alternating least squares in
numpy completes the unrated pairs. Unrated pairs are missing not at random (people rate what they
chose to watch), so their predicted rating is shifted down by `unrated_shift` before it becomes a
grade; without it almost every movie would be a grade 2–3 match for everyone.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from models.simulator.movielens import MovieLens

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True)
class MFConfig:
    rank: int = 16
    reg: float = 5.0
    iters: int = 12
    seed: int = 0
    sample_fraction: float = 1.0  # fit on a random share of the ratings (for the ranker's noisier features)

    def __post_init__(self) -> None:
        if self.rank < 1:
            raise ValueError(f"MFConfig.rank must be >= 1, got {self.rank}")
        if not self.reg > 0:
            raise ValueError(f"MFConfig.reg must be > 0, got {self.reg}")
        if self.iters < 1:
            raise ValueError(f"MFConfig.iters must be >= 1, got {self.iters}")
        if not 0 < self.sample_fraction <= 1:
            raise ValueError(f"MFConfig.sample_fraction must be in (0, 1], got {self.sample_fraction}")

    def key(self) -> str:
        return f"r{self.rank}_l{self.reg:g}_it{self.iters}_s{self.seed}_f{self.sample_fraction:g}"


@dataclass(frozen=True)
class MFModel:
    mu: float
    user_bias: F32
    item_bias: F32
    user_vec: F32  # (n_users, rank)
    item_vec: F32  # (n_items, rank)

    def predict(self, users: npt.ArrayLike, items: npt.ArrayLike) -> F32:
        u = np.asarray(users)
        i = np.asarray(items)
        dot = np.einsum("...k,...k->...", self.user_vec[u], self.item_vec[i])
        return (self.mu + self.user_bias[u] + self.item_bias[i] + dot).astype(np.float32)

    def predict_all(self) -> F32:
        full = self.user_vec @ self.item_vec.T
        full += self.user_bias[:, None] + self.item_bias[None, :] + self.mu
        return full.astype(np.float32)


def _solve_side(
    rows: npt.NDArray[np.int32], cols: npt.NDArray[np.int32], target: npt.NDArray[np.float64],
    other: npt.NDArray[np.float64], n_rows: int, reg: float,
) -> npt.NDArray[np.float64]:
    """Ridge solution per row: x_r = argmin Σ_(r,c) (target - x·other_c)² + reg·|x|²."""
    dim = other.shape[1]
    order = np.argsort(rows, kind="stable")
    rows_s, x = rows[order], other[cols[order]]
    outer = x[:, :, None] * x[:, None, :]
    rhs = x * target[order][:, None]
    starts = np.searchsorted(rows_s, np.arange(n_rows))
    has = np.bincount(rows_s, minlength=n_rows) > 0
    a = np.zeros((n_rows, dim, dim))
    b = np.zeros((n_rows, dim))
    idx = starts[has]
    a[has] = np.add.reduceat(outer, idx, axis=0)
    b[has] = np.add.reduceat(rhs, idx, axis=0)
    a += reg * np.eye(dim)[None]
    solved: npt.NDArray[np.float64] = np.linalg.solve(a, b[:, :, None])[:, :, 0]
    return solved


def fit_mf(ml: MovieLens, cfg: MFConfig) -> MFModel:
    """Biased MF by ALS; deterministic for a given config (seeded init and sampling)."""
    rng = np.random.default_rng(cfg.seed)
    users, items = ml.rating_user, ml.rating_item
    ratings = ml.rating.astype(np.float64)
    if cfg.sample_fraction < 1:
        keep = rng.random(ratings.size) < cfg.sample_fraction
        users, items, ratings = users[keep], items[keep], ratings[keep]
    mu = float(ratings.mean())
    k = cfg.rank
    p = rng.normal(0, 0.1, size=(ml.n_users, k))
    q = rng.normal(0, 0.1, size=(ml.n_items, k))
    bu = np.zeros(ml.n_users)
    bi = np.zeros(ml.n_items)
    ones_u = np.ones((ml.n_users, 1))
    ones_i = np.ones((ml.n_items, 1))
    for _ in range(cfg.iters):
        # users: solve [p_u, b_u] against item rows [q_i, 1]
        sol = _solve_side(users, items, ratings - mu - bi[items], np.hstack([q, ones_i]), ml.n_users, cfg.reg)
        p, bu = sol[:, :k], sol[:, k]
        sol = _solve_side(items, users, ratings - mu - bu[users], np.hstack([p, ones_u]), ml.n_items, cfg.reg)
        q, bi = sol[:, :k], sol[:, k]
    f32 = np.float32
    return MFModel(mu, bu.astype(f32), bi.astype(f32), p.astype(f32), q.astype(f32))


def grades_from(ml: MovieLens, model: MFModel, unrated_shift: float) -> npt.NDArray[np.int8]:
    """(n_users, n_items) grades 0..4: rating - 1 where rated, else round(r̂ - 1 - shift) clipped."""
    pred = model.predict_all() - 1.0 - unrated_shift
    grades = np.clip(np.rint(pred), 0, 4).astype(np.int8)
    grades[ml.rating_user, ml.rating_item] = ml.rating - 1
    return grades


def load_or_fit(ml: MovieLens, cfg: MFConfig, *, cache: Path | None = None) -> MFModel:
    """The fitted MF, cached in the folder `cache` (None: no cache) keyed by its config (seed included)."""
    path = None if cache is None else cache / f"mf_{ml.n_users}x{ml.n_items}_{cfg.key()}.npz"
    if path is not None and path.is_file():
        with np.load(path) as z:
            return MFModel(float(z["mu"]), z["bu"], z["bi"], z["p"], z["q"])
    model = fit_mf(ml, cfg)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp.npz")
        np.savez(tmp, mu=model.mu, bu=model.user_bias, bi=model.item_bias, p=model.user_vec, q=model.item_vec)
        tmp.replace(path)
    return model
