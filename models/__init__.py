"""Models: the DRN Q-network, perturbations, simulators, GE re-ranking."""
