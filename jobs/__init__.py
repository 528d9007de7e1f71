"""Flink jobs: each a pure builder plus a thin __main__."""
