"""Online learning to rank on real LETOR data (MSLR-WEB sample): DBGD, MGD and PDGD with a linear ranker."""

from models.oltr.learners import LEARNERS, make_learner
from models.oltr.letor import Query, mslr_sample_from, parse_letor
from models.oltr.metrics import dcg_at_k, ndcg_at_k
from models.oltr.simulation import OltrConfig, OltrResult, offline_ndcg, run_dbgd, run_oltr

__all__ = [
    "LEARNERS",
    "OltrConfig",
    "OltrResult",
    "Query",
    "dcg_at_k",
    "make_learner",
    "mslr_sample_from",
    "ndcg_at_k",
    "offline_ndcg",
    "parse_letor",
    "run_dbgd",
    "run_oltr",
]
