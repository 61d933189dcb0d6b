"""A resume runs the spec recorded with its rollout, whatever the `spec` parameter says.

A person whose run died at 5 % edited the spec they started it with (an approval before 50 %, a
stricter alpha) and ran progressive_rollout again to resume: the run went on under the recorded
policy without a word, and they believed the 50 % stage would wait for them.
"""

from __future__ import annotations

import logging

from rollway.approvals import auto_approve
from rollway.spec import Analysis
from tests.flows.test_progressive_fakes import env_with_ledger, full_spec, killed_while_baking, progressive_on


def _warnings(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_resume_given_another_policy_says_which_parts_it_does_not_follow(caplog):
    env = env_with_ledger()
    killed_while_baking(env, 5, auto_approve())
    env.clock.sleep(601)  # the dead run's lease runs out
    recorded = full_spec()
    edited = recorded.model_copy(update={
        "stages": tuple(s.model_copy(update={"approval": True}) if s.weight == 50 else s for s in recorded.stages),
        "analysis": Analysis(alpha=0.001),
    })
    with caplog.at_level(logging.WARNING):
        result = progressive_on(env, edited, auto_approve(), owner="run-2")
    assert result.outcome == "promoted"
    said = [m for m in _warnings(caplog) if "recorded" in m and "differs" in m]
    assert len(said) == 1, _warnings(caplog)
    assert "stages, analysis" in said[0] and "`rollway abort`" in said[0], said[0]


def test_a_resume_given_the_recorded_policy_says_nothing_of_it(caplog):
    env = env_with_ledger()
    killed_while_baking(env, 5, auto_approve())
    env.clock.sleep(601)
    with caplog.at_level(logging.WARNING):
        assert progressive_on(env, full_spec(), auto_approve(), owner="run-2").outcome == "promoted"
    assert not [m for m in _warnings(caplog) if "differs" in m], _warnings(caplog)
