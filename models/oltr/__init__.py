"""Online learning to rank on real LETOR data (MSLR-WEB sample): the DBGD + interleaving check."""

from models.oltr.dbgd_sim import OltrConfig, OltrResult, offline_ndcg, run_dbgd
from models.oltr.letor import Query, mslr_sample_from, parse_letor
from models.oltr.metrics import dcg_at_k, ndcg_at_k

__all__ = [
    "OltrConfig",
    "OltrResult",
    "Query",
    "dcg_at_k",
    "mslr_sample_from",
    "ndcg_at_k",
    "offline_ndcg",
    "parse_letor",
    "run_dbgd",
]
