"""Every notice a rollout sends names, in its subject, the service it is about.

The alert topic is the targets' to name, and one topic often serves every service of a team: an
inbox or a pager shows the subject first, and "Rollout stage 2/5: 25% on the new version" did not
say which service's release had moved.
"""

from __future__ import annotations

from tests.flows.test_progressive_fakes import env_with_ledger, full_spec, progressive_on
from rollway.approvals import auto_approve


def test_every_notice_of_a_rollout_names_its_service_in_the_subject():
    env = env_with_ledger()
    result = progressive_on(env, full_spec(), auto_approve("alice"))
    assert result.outcome == "promoted", result.reason
    subjects = [subject for subject, _message in env.notifier.messages]
    assert any(s.startswith("Rollout stage ") for s in subjects), subjects
    unnamed = [s for s in subjects if env.targets.canary_service not in s and env.targets.stable_service not in s]
    assert not unnamed, f"notices whose subject names no service: {unnamed}"
