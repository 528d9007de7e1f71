"""User simulator on MovieLens-100K: real users and items, completed relevance grades, the click
models of the online-LTR literature and user activeness (return visits driven by satisfaction)."""

from models.simulator.arrivals import ArrivalConfig
from models.simulator.click_models import CASCADE_MODELS, CLICK_MODELS, click_model
from models.simulator.evaluate import PolicyReport, evaluate_policy, expected_ctr
from models.simulator.simulator import SimStep, Simulator, SimulatorConfig, TruthRow
from models.simulator.world import ACTION_DIM, STATE_DIM, World, WorldConfig

__all__ = [
    "ACTION_DIM",
    "CASCADE_MODELS",
    "CLICK_MODELS",
    "STATE_DIM",
    "ArrivalConfig",
    "PolicyReport",
    "SimStep",
    "Simulator",
    "SimulatorConfig",
    "TruthRow",
    "World",
    "WorldConfig",
    "click_model",
    "evaluate_policy",
    "expected_ctr",
]
