"""GE re-ranking: a list environment, a list-wise evaluator, a pointer-network generator trained with
REINFORCE, heuristic generators, and best-of-generators serving."""
