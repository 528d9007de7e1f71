"""The ad/session environment: simulated MovieLens users browse a feed page by page; on every page a
mixer places the auction's ads among the ranked organic items.

Per page (request) of a session, drawn from the session's own seeded generator (so every policy meets
the same users, candidates, ads and exit draws for as long as its sessions last):
- organic: the simulator's candidates (`World.candidates`) ranked by the feature MF's predicted rating,
  the top `slots` kept in order. Truth: P(click) = examination(slot) · attractiveness(grade), the
  position-based model of models/simulator/click_models.py. The mixer sees the *re-predicted* value:
  the attractiveness of the grade a linear calibration of the feature MF's prediction gives;
- ads: the auction of models/mixer/ads.py (true CTR; predicted CTR with noise);
- a placement of models/mixer/placements.py; the page's expected organic clicks (engagement) and
  expected revenue (bid × CTR × examination per ad) follow from it exactly;
- reward = w_revenue · revenue + w_engagement · engagement (expected values, no click noise);
- the session model (models/mixer/session.py) then decides whether the user leaves.

State (per session): the user's features (`World.features`: feature-MF vector and bias, age, gender,
log #ratings), then depth / max_depth, decayed ad load / 3, ads on the last page / max_ads, the last
page's engagement, the session's mean engagement per page, the last page's revenue, 1.
Action features (per placement): ads / max_ads, each ad's (slot + 1) / slots (0: absent), predicted
revenue, predicted engagement, predicted engagement lost against the page without ads, each ad's
predicted revenue at its slot, the predicted immediate reward, and the ad load after the page / 3.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from models.mixer.ads import AdCatalog, AdConfig
from models.mixer.placements import Placements
from models.mixer.session import SessionConfig, SessionModel
from models.simulator.click_models import MAX_GRADE
from models.simulator.world import World

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
USER_DIM = 12  # World.features' user part (without activeness, hour and the constant)
SESSION_DIM = 7


@dataclass(frozen=True)
class MixerConfig:
    slots: int = 10
    max_ads: int = 2
    min_gap: int = 2
    eta: float = 0.7  # examination (1 / (slot + 1))^eta
    epsilon: float = 0.1  # attractiveness of a grade-0 item
    w_revenue: float = 1.0
    w_engagement: float = 1.0
    ads: AdConfig = field(default_factory=AdConfig)
    session: SessionConfig = field(default_factory=SessionConfig)

    def __post_init__(self) -> None:
        Placements(self.slots, self.max_ads, self.min_gap)  # raises on bad sizes
        if not (np.isfinite(self.eta) and self.eta >= 0):
            raise ValueError(f"MixerConfig.eta must be a finite number >= 0, got {self.eta}")
        if not 0 <= self.epsilon <= 1:
            raise ValueError(f"MixerConfig.epsilon must be in [0, 1], got {self.epsilon}")
        for name in ("w_revenue", "w_engagement"):
            v = getattr(self, name)
            if not (np.isfinite(v) and v >= 0):
                raise ValueError(f"MixerConfig.{name} must be a finite number >= 0, got {v}")

    @staticmethod
    def from_dict(d: dict[str, object]) -> MixerConfig:
        d = dict(d)
        ads, session = d.pop("ads"), d.pop("session")
        assert isinstance(ads, dict) and isinstance(session, dict)
        return MixerConfig(**d, ads=AdConfig(**ads), session=SessionConfig(**session))  # type: ignore[arg-type]


@dataclass
class Sessions:
    """B sessions in flight (arrays over sessions)."""

    users: I64
    rngs: list[np.random.Generator]
    depth: I64
    load: F64
    ads_last: I64
    eng_last: F64
    eng_total: F64
    rev_last: F64
    rev_total: F64
    alive: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.users)


@dataclass
class Page:
    """What the alive sessions see on their next page; all arrays over those sessions (n = len(rows))."""

    rows: I64  # which sessions
    states: F32  # (n, state_dim)
    actions: F32  # (n, A, action_dim)
    true_engagement: F64  # (n, A)
    true_revenue: F64  # (n, A)
    pred_organic: F64  # (n, slots) predicted click value of each ranked organic item at full examination
    pred_ad: F64  # (n, max_ads) predicted bid × CTR of each ad at full examination
    exit_draw: F64  # (n,)


@dataclass
class Outcome:
    reward: F64
    revenue: F64
    engagement: F64
    done: npt.NDArray[np.bool_]


class MixerEnvironment:
    """One environment seed over `world`: ads, user traits and the calibration are fixed by `seed`."""

    def __init__(self, world: World, config: MixerConfig | None = None, seed: int = 0) -> None:
        self.world = world
        self.config = c = config or MixerConfig()
        self.seed = seed
        self.placements = Placements(c.slots, c.max_ads, c.min_gap)
        self.examination: F64 = (1.0 / np.arange(1, c.slots + 1, dtype=np.float64)) ** c.eta
        self.organic_exposure, self.ad_exposure = self.placements.exposures(self.examination)
        self.n_ads = self.placements.n_ads
        self.no_ads = self.placements.index(())
        ml, fm = world.ml, world.feature_model
        empty = np.empty(0, dtype=np.int64)
        self.user_features: F32 = np.stack(
            [world.features(u, empty)[0][:USER_DIM] for u in range(ml.n_users)]).astype(np.float32)
        self.predicted_rating: F32 = fm.predict_all().astype(np.float32)
        g = world.grades.astype(np.float64).ravel()
        p = self.predicted_rating.astype(np.float64).ravel()
        slope, intercept = np.polyfit(p, g, 1)  # the ranker's calibration of its prediction onto grades
        self.calibration = (float(slope), float(intercept))
        self.ads = AdCatalog(c.ads, fm.user_vec, seed)
        n_ratings = np.bincount(ml.rating_user, minlength=ml.n_users).astype(np.float64)
        self.session_model = SessionModel(c.session, ml.user_age, n_ratings, seed)

    @property
    def state_dim(self) -> int:
        return USER_DIM + SESSION_DIM

    @property
    def action_dim(self) -> int:
        return 6 + 2 * self.config.max_ads

    @property
    def n_actions(self) -> int:
        return len(self.placements)

    def attractiveness(self, grades: npt.NDArray[np.floating]) -> F64:
        e = self.config.epsilon
        out: F64 = e + (1 - e) * (2.0 ** np.asarray(grades, dtype=np.float64) - 1) / (2.0 ** MAX_GRADE - 1)
        return out

    # --- sessions ----------------------------------------------------------------------------------
    def start(self, n_sessions: int, seed: int) -> Sessions:
        """n_sessions fresh sessions; session i draws everything from SeedSequence([seed, i])."""
        if n_sessions < 1:
            raise ValueError(f"n_sessions must be >= 1, got {n_sessions}")
        rngs = [np.random.default_rng(np.random.SeedSequence([seed, i])) for i in range(n_sessions)]
        users = np.array([r.integers(self.world.ml.n_users) for r in rngs], dtype=np.int64)
        z = np.zeros(n_sessions)
        return Sessions(users, rngs, np.zeros(n_sessions, dtype=np.int64), z.copy(),
                        np.zeros(n_sessions, dtype=np.int64), z.copy(), z.copy(), z.copy(), z.copy(),
                        np.ones(n_sessions, dtype=bool))

    def states(self, s: Sessions, rows: I64) -> F32:
        c = self.config
        depth = s.depth[rows].astype(np.float64)
        mean_eng = np.where(depth > 0, s.eng_total[rows] / np.maximum(depth, 1), 0.0)
        session = np.stack([depth / c.session.max_depth, s.load[rows] / 3.0, s.ads_last[rows] / max(c.max_ads, 1),
                            s.eng_last[rows], mean_eng, s.rev_last[rows], np.ones(len(rows))], axis=1)
        return np.hstack([self.user_features[s.users[rows]], session]).astype(np.float32)

    def observe(self, s: Sessions) -> Page:
        """The next page of every alive session (draws from each session's generator)."""
        c, world = self.config, self.world
        rows = np.flatnonzero(s.alive).astype(np.int64)
        users = s.users[rows]
        rngs = [s.rngs[i] for i in rows]
        organic = np.empty((len(rows), c.slots), dtype=np.int64)
        for n, (u, r) in enumerate(zip(users, rngs, strict=True)):
            cand = world.candidates(r)
            pred = self.predicted_rating[u, cand]
            organic[n] = cand[np.argsort(-pred, kind="stable")[: c.slots]]
        bids, ctr_true, ctr_pred = self.ads.auction(users, rngs, c.max_ads)
        exit_draw = np.array([r.random() for r in rngs])
        true_org = self.attractiveness(world.grades[users[:, None], organic])
        slope, intercept = self.calibration
        pred_grade = np.clip(intercept + slope * self.predicted_rating[users[:, None], organic], 0, MAX_GRADE)
        pred_org = self.attractiveness(pred_grade)
        pred_ad, true_ad = bids * ctr_pred, bids * ctr_true
        true_eng = true_org @ self.organic_exposure.T
        true_rev = true_ad @ self.ad_exposure.T
        pred_eng = pred_org @ self.organic_exposure.T
        pred_rev_each = pred_ad[:, None, :] * self.ad_exposure[None]  # (n, A, max_ads)
        pred_rev = pred_rev_each.sum(axis=2)
        a = len(self.placements)
        pos = self.placements.ad_positions()
        slot_feat = np.where(pos >= 0, (pos + 1) / c.slots, 0.0)
        load_after = self.session_model.next_load(s.load[rows][:, None], self.n_ads[None, :]) / 3.0
        immediate = c.w_revenue * pred_rev + c.w_engagement * pred_eng
        actions = np.concatenate([
            np.broadcast_to(self.n_ads / max(c.max_ads, 1), (len(rows), a))[..., None],
            np.broadcast_to(slot_feat, (len(rows), a, c.max_ads)),
            pred_rev[..., None], pred_eng[..., None],
            (pred_eng[:, [self.no_ads]] - pred_eng)[..., None],
            pred_rev_each, immediate[..., None], load_after[..., None],
        ], axis=2).astype(np.float32)
        return Page(rows, self.states(s, rows), actions, true_eng, true_rev, pred_org, pred_ad, exit_draw)

    def step(self, s: Sessions, page: Page, choice: npt.ArrayLike) -> Outcome:
        """Show placement `choice[n]` on page n; update the sessions; rewards and exits."""
        c = self.config
        a = np.asarray(choice, dtype=np.int64)
        if a.shape != page.rows.shape or (a.size and (a.min() < 0 or a.max() >= self.n_actions)):
            raise ValueError(f"choice must be {page.rows.shape[0]} placements in [0, {self.n_actions})")
        n = np.arange(len(a))
        eng, rev = page.true_engagement[n, a], page.true_revenue[n, a]
        rows, users = page.rows, s.users[page.rows]
        ads = self.n_ads[a]
        load = self.session_model.next_load(s.load[rows], ads)
        p_exit = self.session_model.exit_probability(users, load, eng)
        depth = s.depth[rows] + 1
        done = (page.exit_draw < p_exit) | (depth >= c.session.max_depth)
        s.depth[rows], s.load[rows], s.ads_last[rows] = depth, load, ads
        s.eng_last[rows], s.rev_last[rows] = eng, rev
        s.eng_total[rows] += eng
        s.rev_total[rows] += rev
        s.alive[rows] = ~done
        return Outcome(c.w_revenue * rev + c.w_engagement * eng, rev, eng, done)
