"""Who ended a rollout, and their comment, as the ledger's refusals quote them (" by <actor> at
<time>: <comment>"): shown escaped (``rollway.one_line``), as the reports and `rollway status` show
them. A name or comment kept as typed (by a rollway before names were checked, or a rollback's reason
quoting a person's words) wrote a line of its own under the refusal in the run's log, and a
right-to-left override reordered the words after it."""

from __future__ import annotations

import pytest

from rollway.ledger import RolloutClosed, RolloutEnded, Transition, check_not_ended, check_open_for_rollback
from rollway.phases import RolloutPhase
from tests.unit.test_reports import T0, record, shift, started, w

NAME = "dana\n\u202eenoN"
COMMENT = "latency looks off\nrollback by nobody \u202egnikrow lla"


def rolled_back(phase: RolloutPhase):
    return record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 600, kind="rollback-start", actor=NAME, comment=COMMENT),
        *([Transition(at=T0 + 700, kind="rollback", actor=NAME, to_weights=w(0), comment=COMMENT)]
          if phase is RolloutPhase.ROLLED_BACK else []),
    ], phase, weights=w(0))


@pytest.mark.parametrize("phase", [RolloutPhase.ROLLING_BACK, RolloutPhase.ROLLED_BACK])
def test_a_refused_owners_write_names_who_rolled_back_escaped(phase):
    with pytest.raises(RolloutEnded) as ended:
        check_not_ended(rolled_back(phase))
    said = str(ended.value)
    assert r" by dana\n\u202eenoN at " in said, said
    assert r": latency looks off\nrollback by nobody \u202egnikrow lla; this run stops" in said, said
    assert "\n" not in said and "\u202e" not in said, said


def test_a_refused_rollback_names_who_rolled_back_escaped():
    with pytest.raises(RolloutClosed) as closed:
        check_open_for_rollback(rolled_back(RolloutPhase.ROLLED_BACK))
    said = str(closed.value)
    assert r"was already rolled back by dana\n\u202eenoN at " in said, said
    assert "\n" not in said and "\u202e" not in said, said
