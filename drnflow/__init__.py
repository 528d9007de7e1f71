"""drnflow: streaming online learning (DRN + DBGD, GE re-ranking) on Kafka and Flink."""

__version__ = "0.1.0"
