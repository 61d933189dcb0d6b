"""A run killed after a shift moved its bound flags, before the one write that records both,
leaves the flag moves in the ledger anyway: the resume reads them from the flags' audit trails.

The resume recorded the shift it found on the load balancer, but no flag entry: the flags were
already at the stage's settings, written last by this rollout, so the resume had nothing to move.
"""
from __future__ import annotations

import pytest

from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState
from tests.flows.fake_env import fake_environment
from tests.flows.test_progressive_fakes import Killed
from tests.flows.test_transactions import rollout, spec


def test_flag_moves_of_a_shift_killed_before_its_record_are_recorded_on_resume():
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])
    real_record = env.ledger.record
    killed = []

    def record(*args, **kwargs):
        transition = kwargs.get("transition")
        if transition is not None and transition.kind == "shift" and not killed:
            killed.append(transition)
            raise Killed("the node is lost after the shift and its flags, before the ledger write")
        return real_record(*args, **kwargs)

    env.ledger.record = record
    with pytest.raises(Killed):
        rollout(env, spec("use_sqs_architecture"))
    assert rollout(env, spec("use_sqs_architecture")).outcome == "promoted"
    history = env.ledger.get(env.targets.canary_service).history
    flag_entries = [t.comment for t in history if t.kind == "flag"]
    assert [c for c in flag_entries if "-> on 5%" in c] and [c for c in flag_entries if "-> on 100%" in c], flag_entries
    shifts = [t for t in history if t.kind == "shift"]
    assert [t.actor for t in shifts][:1] == ["reconcile"], [(t.actor, t.comment) for t in shifts]
