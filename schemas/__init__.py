"""Avro schemas of drnflow's topics (design.md §2-§3); `previous/` holds the last released copies."""

from pathlib import Path

from schemas import process_defaults  # noqa: F401  (one BLAS thread per process before numpy loads)

SCHEMA_DIR = Path(__file__).resolve().parent
PREVIOUS_DIR = SCHEMA_DIR / "previous"

#: Record name -> file name. One entry per topic value type.
SCHEMA_FILES: dict[str, str] = {
    "Impression": "impression.avsc",
    "Click": "click.avsc",
    "ModelWeights": "model_weights.avsc",
    "WinRate": "win_rate.avsc",
    "MajorUpdateTrigger": "major_update_trigger.avsc",
    "DeadLetter": "dead_letter.avsc",
}

#: Record name -> file name of what is not a topic value: the JVM -> Python hand-over of the PDGD step.
INTERNAL_SCHEMA_FILES: dict[str, str] = {
    "PdgdBatch": "pdgd_batch.avsc",
}
