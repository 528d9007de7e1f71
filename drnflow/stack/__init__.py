"""The local stack: a real Kafka broker and Flink, started from pinned Maven Central jars."""
