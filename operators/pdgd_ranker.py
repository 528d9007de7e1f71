"""The PDGD ranker: shows the top k of a Plackett–Luce sample over the served version's Q/τ (issue 14).

PDGD explores by sampling, not by perturbing the weights: one list, every slot the current team, no
explore seed. The sample of a request is drawn by the Gumbel trick from `request_rng(base_seed,
request_id, 0)`, so it depends on the request alone, not on arrival order or on other requests. Beside
the shown items the impression carries `pdgd` = {temperature, log_rest} (schemas/impression.avsc): what
the learner needs to weigh the preferences without the unshown candidates' features. Weights are held
and swapped exactly as the DBGD ranker's (it is one, with `rank` replaced).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from models.interleave import Team
from models.pdgd import log_rest_mass, plackett_luce_sample
from operators.ranker import Ranker, RankerConfig, request_rng
from schemas.records import impression_record


class PdgdRanker(Ranker):
    """A Ranker whose lists are Plackett–Luce samples of the served version's scores."""

    def __init__(self, config: RankerConfig, temperature: float = 1.0) -> None:
        super().__init__(config)
        if not (np.isfinite(temperature) and temperature > 0):
            raise ValueError(f"PDGD temperature must be finite and > 0, got {temperature!r}")
        self.temperature = float(temperature)

    def rank(self, request_id: str, user_id: str, event_time: int, state_features: npt.ArrayLike,
             candidates: Sequence[tuple[str, npt.ArrayLike]], k: int) -> dict[str, Any]:
        served, state, item_ids, actions = self._checked_request(request_id, state_features, candidates, k)
        scores = served.scorer.q(state, actions).astype(np.float64) / self.temperature
        shown = plackett_luce_sample(scores, k, request_rng(self.config.base_seed, request_id, 0)).tolist()
        record = impression_record(
            request_id=request_id, user_id=user_id, event_time=event_time, model_id=self.config.model_id,
            model_version=served.version, explore_seeds=[],
            slots=((item_ids[i], Team.CURRENT.value, actions[i].tolist(), None) for i in shown),
            state_features=state.tolist(), interleaving="pdgd",
            pdgd={"temperature": self.temperature, "log_rest": log_rest_mass(scores, shown)})
        return record
