"""The major update of DRN: Dueling Double DQN retrained on a logged range, offline evaluation against
LR / FM / the current base, a quality gate; the Kafka side lives in jobs/major_update.py."""
