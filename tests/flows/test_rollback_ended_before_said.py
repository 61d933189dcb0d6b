"""A rollback whose end another rollback recorded first says who, as the ledger has it, through
``rollway.one_line.on_one_line``: a name with an escape sequence in it acted on the terminal reading the log."""
from __future__ import annotations

import pytest

from flows.rollback import RollbackEndedBefore, _not_ended_by_another
from rollway.ledger import RolloutRecord, Transition
from rollway.phases import RolloutPhase


def test_who_ended_a_rollback_first_is_said_with_its_control_characters_escaped():
    record = RolloutRecord(service="webordinary-edit-service-canary", rollout_id="20261207T060000Z-1a2b3c4d",
                           image="webordinary/edit-container:2.0.0", spec_json="{}", phase=RolloutPhase.ROLLED_BACK,
                           history=(Transition(at=100.0, kind="rollback", actor="eve\x1b[2J\u202eoperator"),))
    with pytest.raises(RollbackEndedBefore) as ended:
        _not_ended_by_another(record)
    said = str(ended.value)
    assert "\x1b" not in said and "\u202e" not in said, said
    assert "by eve\\x1b[2J\\u202eoperator at " in said, said


def test_who_ended_a_rollback_first_is_said_on_one_line_as_the_rest_of_the_rollback_says_names():
    """A line break in the name, as an older rollway's form recorded it: one space, as every other
    line of the rollback names an actor (``on_one_line``), not a ``\\n`` of its own."""
    record = RolloutRecord(service="webordinary-edit-service-canary", rollout_id="20261207T060000Z-1a2b3c4d",
                           image="webordinary/edit-container:2.0.0", spec_json="{}", phase=RolloutPhase.ROLLED_BACK,
                           history=(Transition(at=100.0, kind="rollback", actor="eve\nmallory"),))
    with pytest.raises(RollbackEndedBefore) as ended:
        _not_ended_by_another(record)
    assert "by eve mallory at " in str(ended.value), ended.value
