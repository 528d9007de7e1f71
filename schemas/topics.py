"""Topic names of design.md §2; one prefix option applies to all of them."""

from __future__ import annotations

from dataclasses import dataclass

#: Logical topic -> Avro record name of its values.
TOPIC_SCHEMAS: dict[str, str] = {
    "impressions": "Impression",
    "clicks": "Click",
    "model-weights": "ModelWeights",
    "win-rates": "WinRate",
    "major-update-triggers": "MajorUpdateTrigger",
    "dead-letters": "DeadLetter",
}


@dataclass(frozen=True)
class TopicNames:
    """Concrete topic names for one deployment (`prefix` + default name)."""

    prefix: str = ""

    def __post_init__(self) -> None:
        allowed = set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
        bad = sorted(set(self.prefix) - allowed)
        if bad:
            raise ValueError(f"topic prefix {self.prefix!r} has characters Kafka rejects: {''.join(bad)!r}")
        if len(self.prefix) > 200:
            raise ValueError(f"topic prefix is {len(self.prefix)} characters; Kafka allows 249 per name")

    def name(self, logical: str) -> str:
        if logical not in TOPIC_SCHEMAS:
            raise KeyError(f"unknown topic {logical!r}; known: {', '.join(TOPIC_SCHEMAS)}")
        return f"{self.prefix}{logical}"

    @property
    def impressions(self) -> str:
        return self.name("impressions")

    @property
    def clicks(self) -> str:
        return self.name("clicks")

    @property
    def model_weights(self) -> str:
        return self.name("model-weights")

    @property
    def win_rates(self) -> str:
        return self.name("win-rates")

    @property
    def major_update_triggers(self) -> str:
        return self.name("major-update-triggers")

    @property
    def dead_letters(self) -> str:
        return self.name("dead-letters")

    def all(self) -> list[str]:
        return [self.name(t) for t in TOPIC_SCHEMAS]
