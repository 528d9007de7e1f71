"""Offline evaluation of a ranking policy on the simulated users: expected CTR under a click model.

Every policy meets the very same sequence of (user, time, candidates) for a given seed (return
visits are off, so the sequence cannot depend on the policy), and clicks are not sampled: the exact
per-slot click probabilities of the click model are summed. Comparing two policies therefore has
no click noise, only the finite sample of requests.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from models.simulator.arrivals import ArrivalConfig, Arrivals
from models.simulator.click_models import CascadeModel, PositionBasedModel, click_model
from models.simulator.drift import NewsDrift
from models.simulator.policies import RankingPolicy
from models.simulator.world import World


@dataclass(frozen=True)
class PolicyReport:
    """Expected clicks, and graded quality of the shown lists. Under cascade models that stop
    (navigational, informational) clicks per slot *fall* as lists improve: compare policies on
    `ndcg` or `p_any_click`, or on CTR under `perfect` / `pbm`."""

    impressions: int
    slots: int
    expected_clicks: float
    mean_grade: float
    ndcg: float  # mean NDCG@k of the shown list against the best k of the candidates
    p_any_click: float  # mean P(at least one click)
    #: Expected clicks per shown slot of each request, in order: two policies evaluated with the same seed
    #: meet the same requests, so their difference can be paired request by request.
    per_request_ctr: tuple[float, ...] = ()

    @property
    def ctr(self) -> float:
        """Expected clicks per shown slot."""
        return self.expected_clicks / self.slots if self.slots else 0.0

    @property
    def clicks_per_impression(self) -> float:
        return self.expected_clicks / self.impressions if self.impressions else 0.0


def evaluate_policy(
    policy: RankingPolicy, users: World, n: int, seed: int, *, click_model_name: str = "navigational",
    k: int = 10, arrivals: ArrivalConfig | None = None, drift: NewsDrift | None = None,
) -> PolicyReport:
    """Rank n simulated requests with `policy`; sum the click model's exact click probabilities. With `drift`
    (a drifting world), the requests meet that world as it is at their time: its live items, their ages
    and drifted grades (set `arrivals.start_ms` to the moment to evaluate)."""
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    model = click_model(click_model_name)
    arr_ss, cand_ss = np.random.SeedSequence([seed, 0xE7A1]).spawn(2)
    process = Arrivals(users.ml, arrivals or ArrivalConfig(), np.random.default_rng(arr_ss), returns=False)
    cand_rng = np.random.default_rng(cand_ss)
    clicks = 0.0
    slots = 0
    grade_sum = 0
    ndcg_sum = 0.0
    any_click = 0.0
    per_request: list[float] = []
    item_ids, user_ids = users.ml.item_ids, users.ml.user_ids
    for i in range(n):
        t, user, _ = process.next()
        cands = users.candidates(cand_rng, None if drift is None else drift.live(t, users.config.n_candidates))
        state, actions = users.features(user, cands, event_time=t,
                                        item_age=None if drift is None else drift.age_fraction(cands, t))
        imp = policy.rank(f"eval{seed}-{i}", user_ids[user], t, state,
                          [(item_ids[int(c)], actions[j]) for j, c in enumerate(cands)], k)
        shown = np.array([users.item_index[str(s["item_id"])] for s in imp["slots"]], dtype=np.int64)
        true_grades = users.grades[user]
        grades = [int(g) for g in (true_grades[shown] if drift is None
                                   else drift.grades(true_grades[shown], shown, t))]
        p = model.click_probabilities(grades)
        clicks += float(p.sum())
        per_request.append(float(p.sum()) / max(len(grades), 1))
        any_click += 1.0 - float(np.prod(1.0 - _first_click_free(model, grades)))
        ideal = np.sort(true_grades[cands] if drift is None else drift.grades(true_grades[cands], cands, t))[::-1][:k]
        ndcg_sum += ndcg(np.asarray(grades), ideal)
        slots += len(grades)
        grade_sum += sum(grades)
    return PolicyReport(n, slots, clicks, grade_sum / slots if slots else 0.0, ndcg_sum / n, any_click / n,
                        tuple(per_request))


def paired_difference(a: PolicyReport, b: PolicyReport) -> tuple[float, float]:
    """Mean per-request CTR of a minus b over the same requests, and the half-width of its 95% interval."""
    if len(a.per_request_ctr) != len(b.per_request_ctr) or len(a.per_request_ctr) < 2:
        raise ValueError("paired_difference needs two reports of the same >= 2 requests")
    d = np.asarray(a.per_request_ctr) - np.asarray(b.per_request_ctr)
    return float(d.mean()), float(1.96 * d.std(ddof=1) / np.sqrt(d.size))


def _first_click_free(model: object, grades: list[int]) -> np.ndarray:
    """Per-slot P(click) ignoring stopping: no click at all means every slot was examined and
    skipped, so P(no click) = Π (1 - P(click_i | examined_i)) for cascades and PBM alike."""
    if isinstance(model, PositionBasedModel):
        return model.click_probabilities(grades)
    assert isinstance(model, CascadeModel)
    return np.asarray(model.p_click)[np.asarray(grades, dtype=np.int64)]


def ndcg(grades: np.ndarray, ideal: np.ndarray) -> float:
    disc = 1.0 / np.log2(np.arange(2, grades.size + 2))
    idcg = float(((2.0 ** ideal - 1) * disc[: ideal.size]).sum())
    return float(((2.0 ** grades - 1) * disc).sum()) / idcg if idcg > 0 else 0.0


def expected_ctr(policy: RankingPolicy, users: World, n: int, seed: int, *,
                 click_model_name: str = "navigational", k: int = 10) -> float:
    """Expected clicks per shown slot of `policy` over n simulated requests (see evaluate_policy)."""
    return evaluate_policy(policy, users, n, seed, click_model_name=click_model_name, k=k).ctr
