"""A rollout whose spec binds a flag the flags table does not hold is refused before any write, in
words that say where the name comes from and what to do.

It said the library's "unknown feature flag 'x': create it first (nothing was written)": not that the
name is the spec's binding (a typo is the likelier cause), nor how to see the flags there are, nor
how to create one so that the rollout moves it from its first stage (off until then).
"""

from __future__ import annotations

import pytest

from flows.canary import RolloutRefused
from rollway.fakes import FakeFlagStore, FakeLedger
from rollway.flags import FlagState, UnknownFlag
from tests.flows.fake_env import fake_environment
from tests.flows.test_transactions import rollout, spec


def test_a_rollout_binding_an_unknown_flag_says_it_is_the_specs_binding_and_how_to_fix_it():
    env = fake_environment()
    env.ledger = FakeLedger()
    env.flags = FakeFlagStore([FlagState(feature="use_sqs_architecture")])

    with pytest.raises(RolloutRefused) as refused:
        rollout(env, spec("use_sqs_architecture", "use_sqs_architecure"))

    said = str(refused.value)
    assert isinstance(refused.value.__cause__, UnknownFlag)
    assert "create it first" not in said, said
    assert "'use_sqs_architecure'" in said and "'use_sqs_architecture'" not in said, said
    assert "the spec's `flags` bind" in said, said
    assert "`rollway flags list` lists the flags there are" in said, said
    assert "`rollway flags set use_sqs_architecure --create --no-enabled`" in said, said
    assert "nothing was changed" in said, said
    assert env.ledger.get(env.targets.canary_service) is None, "no rollout was recorded"
