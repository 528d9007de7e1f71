"""DRN's offline start: the first network is trained by the major update on a logging policy's log, not drawn
at random.

DRN goes online from a Q-network trained offline on the existing system's logs; DBGD and later major updates
only refine it. Here the log comes from a simulator serving a logging policy with exploration
(`models.simulator.policies.ExploringPolicy`): its random share shows the network what the base order hides.
The same `run_update` the `drnflow major-update` command runs trains it (no base: a network built from
scratch), so the offline start and a live major update cannot drift apart. From the command line the same
sequence is `simulate --policy popular --explore 0.3`, then `major-update --from ... --to ...` (see the
README's "Offline start").
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from models.major.update import LogRange, MajorUpdateConfig, UpdateOutcome, run_update
from models.perturbation import ExploreParams
from models.weights import flatten, layout_of, make_model_weights_record


def log_range(model_id: str, steps: Iterable[Any]) -> LogRange:
    """The impressions and clicks of simulator steps as the major update reads them from Kafka."""
    impressions: list[dict[str, Any]] = []
    clicks: list[dict[str, Any]] = []
    for step in steps:
        impressions.append({**step.impression, "model_id": model_id})
        clicks.extend(step.clicks)
    if not impressions:
        raise ValueError("an offline start needs at least one logged impression")
    start = min(int(i["event_time"]) for i in impressions)
    end = max([int(i["event_time"]) for i in impressions] + [int(c["event_time"]) for c in clicks]) + 1
    return LogRange(model_id, start, end, impressions, clicks)


def train_offline_start(
    data_log: LogRange, config: MajorUpdateConfig, *, version: int = 1, created_at: int,
    explore: ExploreParams | None = None,
) -> tuple[dict[str, Any], UpdateOutcome]:
    """Train a network from scratch on `data_log`; the MAJOR record (with `explore` written into its
    architecture) and the update's outcome (its report holds the offline table). Raises ValueError when the
    update publishes nothing (an empty or corrupt log): there is no start to go online with."""
    outcome = run_update(data_log, None, config)
    if not outcome.publish or outcome.network is None:
        raise ValueError(f"offline start of {data_log.model_id!r}: {outcome.status}: {outcome.reason}")
    return major_record(outcome, data_log, version=version, parent_version=None, created_at=created_at,
                        explore=explore), outcome


def major_record(outcome: UpdateOutcome, data_log: LogRange, *, version: int, parent_version: int | None,
                 created_at: int, explore: ExploreParams | None = None) -> dict[str, Any]:
    """The MAJOR ModelWeights record of a published update's candidate, trained on `data_log`; `explore`, when
    given, is written into its architecture."""
    assert outcome.network is not None, "only a trained candidate becomes a MAJOR"
    arch = outcome.architecture if explore is None else explore.written_into(outcome.architecture)
    return make_model_weights_record(
        model_id=data_log.model_id, version=version, parent_version=parent_version, kind="MAJOR",
        flat=flatten(outcome.network), layout=layout_of(outcome.network), created_at=created_at,
        explore_seeds=[], window_start=data_log.start_ms, window_end=data_log.end_ms, architecture=arch,
    )
