"""The GE experiment as three steps that hand over checkpoints: train the evaluator on logs, train the
generator against it, compare generators. A checkpoint carries the setup, so every step rebuilds the
same environment and logs from seeds instead of passing data around."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from models.ge.environment import (
    EnvConfig,
    ListEnvironment,
    LoggedLists,
    log_exposures,
    log_multi_objective_exposures,
    split_by_time,
)
from models.ge.evaluator import EvaluatorConfig, ListEvaluator
from models.ge.list_generators import (
    DPP,
    MMR,
    BeamSearch,
    BestOfGenerators,
    ListGenerator,
    MultiQueue,
    PointerBestOfK,
    PointerGreedy,
    ScoreGreedy,
)
from models.ge.pointer_generator import GeneratorConfig, PointerGenerator
from models.ge.utilities import ListReward, RuleConfig, UtilityWeights

EVALUATOR_FILE = "evaluator.pt"
GENERATOR_FILE = "generator.pt"

PRESETS: dict[str, EnvConfig] = {
    "default": EnvConfig(),
    "tiny": EnvConfig(n_users=200, n_items=400, n_shops=10, n_types=4, item_dim=8, user_dim=6, latent_dim=6,
                      candidates=12, list_size=5),
}


@dataclass(frozen=True)
class GeSetup:
    """Where the data comes from: the environment and the logging run, all from seeds."""

    env: EnvConfig = field(default_factory=EnvConfig)
    env_seed: int = 0
    logs: int = 20_000
    log_seed: int = 1
    logging_temperature: float = 0.7
    train_fraction: float = 0.8

    def __post_init__(self) -> None:
        if self.logs < 10:
            raise ValueError(f"GeSetup.logs must be >= 10, got {self.logs}")
        if self.logging_temperature < 0:
            raise ValueError(f"GeSetup.logging_temperature must be >= 0, got {self.logging_temperature}")
        if not 0.0 < self.train_fraction < 1.0:
            raise ValueError(f"GeSetup.train_fraction must be in (0, 1), got {self.train_fraction}")

    @staticmethod
    def from_dict(d: dict[str, Any]) -> GeSetup:
        return GeSetup(**{**d, "env": EnvConfig(**d["env"])})


def build_data(setup: GeSetup, objectives: bool = False) -> tuple[ListEnvironment, LoggedLists, LoggedLists]:
    """The environment and its logs split by time into train and held-out; with `objectives` the logs also
    carry long-view and continue labels (the same requests, lists and clicks)."""
    env = ListEnvironment(setup.env, seed=setup.env_seed)
    logger = log_multi_objective_exposures if objectives else log_exposures
    log = logger(env, setup.logs, seed=setup.log_seed, temperature=setup.logging_temperature)
    train, held_out = split_by_time(log, setup.train_fraction)
    return env, train, held_out


def evaluator_config_for(env: ListEnvironment, **shape: int) -> EvaluatorConfig:
    cat = env.catalog
    return EvaluatorConfig(cat.item_dim, env.config.user_dim, cat.n_shops, cat.n_types,
                           max_length=max(16, env.config.list_size), **shape)


def generator_config_for(env: ListEnvironment, **shape: int) -> GeneratorConfig:
    cat = env.catalog
    return GeneratorConfig(cat.item_dim, env.config.user_dim, cat.n_shops, cat.n_types, **shape)


#: `setup["source"]` of an evaluator trained on the pipeline's log (models/ge/from_log.py, jobs/ge_from_log.py);
#: a setup without "source" is a GeSetup of the seeded list environment.
TOPICS_SOURCE = "topics"


def save_evaluator(path: Path, setup: GeSetup | dict[str, Any], evaluator: ListEvaluator) -> None:
    """The evaluator with where its data came from: a GeSetup, or a dict with "source" (e.g. TOPICS_SOURCE)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"setup": setup if isinstance(setup, dict) else asdict(setup), "config": asdict(evaluator.config),
                "state_dict": evaluator.state_dict()}, path)


def load_evaluator_setup(path: Path) -> tuple[dict[str, Any], ListEvaluator]:
    """The evaluator and its setup as saved; ValueError (one sentence) for a file that is not one."""
    try:
        ckpt = torch.load(path, weights_only=True)
        evaluator = ListEvaluator(EvaluatorConfig(**ckpt["config"]))
        evaluator.load_state_dict(ckpt["state_dict"])
        setup = dict(ckpt["setup"])
    except Exception as e:  # torch.load raises many types on a file that is not a checkpoint
        raise ValueError(f"{path} is not an evaluator checkpoint ({type(e).__name__})") from None
    return setup, evaluator.eval()


def load_evaluator(path: Path) -> tuple[GeSetup, ListEvaluator]:
    setup, evaluator = load_evaluator_setup(path)
    if "source" in setup:
        raise ValueError(f"{path} was trained on {setup['source']}, not on the list environment")
    return GeSetup.from_dict(setup), evaluator


def save_generator(
    path: Path, generator: PointerGenerator, weights: UtilityWeights, rules: RuleConfig
) -> None:
    """State dict, utility weights and rules; `ge publish` turns the module into a ModelWeights record
    (operators/reranker.generator_record, flat weights by models/weights.py)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"config": asdict(generator.config), "state_dict": generator.state_dict(),
                "utility_weights": asdict(weights), "rules": asdict(rules)}, path)


def load_generator(path: Path) -> tuple[PointerGenerator, UtilityWeights, RuleConfig]:
    """The generator and its reward settings; ValueError (one sentence) for a file that is not one."""
    try:
        ckpt = torch.load(path, weights_only=True)
        generator = PointerGenerator(GeneratorConfig(**ckpt["config"]))
        generator.load_state_dict(ckpt["state_dict"])
        return generator.eval(), UtilityWeights(**ckpt["utility_weights"]), RuleConfig(**ckpt["rules"])
    except Exception as e:  # torch.load raises many types on a file that is not a checkpoint
        raise ValueError(f"{path} is not a generator checkpoint ({type(e).__name__})") from None


@dataclass(frozen=True)
class ServingConfig:
    """Settings of the generators compared by `drnflow ge evaluate` and the bench."""

    k: int = 8  # lists for pointer best-of-K and multi-queue
    beam_width: int = 4
    mmr_diversity: float = 0.3
    dpp_quality: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        if self.k < 1 or self.beam_width < 1:
            raise ValueError("ServingConfig.k and beam_width must be >= 1")
        if not 0.0 <= self.mmr_diversity <= 1.0:
            raise ValueError(f"ServingConfig.mmr_diversity must be in [0, 1], got {self.mmr_diversity}")
        if self.dpp_quality < 0:
            raise ValueError(f"ServingConfig.dpp_quality must be >= 0, got {self.dpp_quality}")


def standard_generators(evaluator: ListEvaluator, generator: PointerGenerator, reward: ListReward,
                        list_size: int, config: ServingConfig) -> list[ListGenerator]:
    """Pointer greedy, pointer best-of-K, greedy by score, beam search, MMR, DPP, multi-queue, and the
    best-of-generators serving mode over all of them but beam search (too slow to serve at M = 50)."""
    n = list_size
    pointer = PointerGreedy(generator, n)
    best_of_k = PointerBestOfK(generator, n, reward, k=config.k, seed=config.seed)
    by_score = ScoreGreedy(n)
    mmr = MMR(n, config.mmr_diversity)
    dpp = DPP(n, config.dpp_quality)
    multi = MultiQueue(n, reward, k=config.k, seed=config.seed)
    beam = BeamSearch(evaluator, n, config.beam_width)
    serving = BestOfGenerators([pointer, best_of_k, by_score, mmr, dpp, multi], n, reward)
    return [pointer, best_of_k, by_score, beam, mmr, dpp, multi, serving]
