"""Operators: small classes with explicit state (rankers, interleavers, learners)."""
