"""The one builder of a fresh DRN model: a seeded DrnQNetwork as a MAJOR ModelWeights record.

Used when a model_id has no version yet: by the minor-update job (which publishes it so rankers and
replays know it), by `drnflow simulate --publish-initial` and by the demo's in-memory loop.
"""

from __future__ import annotations

from typing import Any

from models.drn import DrnConfig, DrnQNetwork
from models.perturbation import ExploreParams
from models.weights import flatten, layout_of, make_model_weights_record


def initial_drn_record(
    model_id: str, state_dim: int, action_dim: int, seed: int, *, version: int = 1, created_at: int,
    explore: ExploreParams | None = None,
) -> dict[str, Any]:
    """A MAJOR record of DrnQNetwork(DrnConfig(state_dim, action_dim, seed)); `explore` (the α and ΔW kind
    rankers and learners must share) is written into its architecture when given."""
    import torch

    torch.set_num_threads(1)
    arch = DrnConfig(state_dim=state_dim, action_dim=action_dim, seed=seed)
    net = DrnQNetwork(arch)
    architecture = arch.to_json() if explore is None else explore.written_into(arch.to_json())
    return make_model_weights_record(
        model_id=model_id, version=version, parent_version=None, kind="MAJOR", flat=flatten(net),
        layout=layout_of(net), created_at=created_at, explore_seeds=[], architecture=architecture,
    )
