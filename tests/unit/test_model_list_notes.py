"""`drnflow model list` says what each version asks of rankers and the job: explore parameters,
probation, and what a ROLLBACK serves."""

from __future__ import annotations

from drnflow.commands.model import version_notes
from models.perturbation import ExploreParams
from models.probation import ProbationParams


def test_notes_name_the_explore_parameters_a_probation_and_a_rollbacks_weights() -> None:
    explore = ExploreParams(0.1).written_into("")
    major = {"kind": "MAJOR", "parent_version": 6,
             "architecture": ProbationParams(3, 0.55).written_into(explore)}
    assert version_notes(major) == ("explore alpha 0.1, multiplicative; on probation: 3 windows against its "
                                    "parent, rolled back below a win rate of 0.55 (v6)")
    # a MINOR copies its parent's explore parameters and is never on probation
    assert version_notes({"kind": "MINOR", "parent_version": 7, "architecture": major["architecture"]}) == \
        "explore alpha 0.1, multiplicative"
    assert version_notes({"kind": "ROLLBACK", "parent_version": 6, "architecture": ""}) == "v6's weights again"
    assert version_notes({"kind": "MAJOR", "parent_version": None, "architecture": "not json"}) == ""
