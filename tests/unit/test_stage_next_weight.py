"""The weights a skip ahead may name, as the refusal of one that is not a stage lists them."""

from __future__ import annotations

import pytest

from rollway.approvals import next_stage_for
from rollway.decide import Pause
from rollway.spec import RolloutSpec, Stage

SPEC = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=5), Stage(weight=25, approval=True), Stage(weight=50),
                                                   Stage(weight=75, approval=True), Stage(weight=100)])
AT_25 = Pause(reason="approval needed before 25%", cause="approval", stage_index=1)


def test_a_weight_that_is_no_stage_is_refused_naming_only_the_weights_this_phase_takes():
    """In a weekly phase ending at 50 %, the refusal listed 75 and 100 too: a person who chose one
    of them was refused again, an analysis interval later, for going past the phase."""
    with pytest.raises(ValueError) as refused:
        next_stage_for(SPEC, AT_25, 7, until_stage=2)
    assert "(choose from [25, 50])" in str(refused.value), str(refused.value)


def test_without_a_phase_every_later_stage_may_be_named():
    with pytest.raises(ValueError, match=r"\(choose from \[25, 50, 75, 100\]\)"):
        next_stage_for(SPEC, AT_25, 7)
    assert next_stage_for(SPEC, AT_25, 75) == 3


def test_a_stage_past_the_phase_is_refused_as_past_it():
    with pytest.raises(ValueError, match="past this phase, which ends at 50%"):
        next_stage_for(SPEC, AT_25, 75, until_stage=2)
