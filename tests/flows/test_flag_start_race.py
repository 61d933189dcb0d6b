"""Two rollouts of two services bound to one flag, started together: both passed the start check
(nobody held the flag yet), and both moved it, each to its own stage, so its users went on and off
with every stage of either. The later one's first stage is refused, its traffic goes back, and its
rollback leaves the flag as the other rollout set it; on the embedded AWS (flags table and ledger)."""

from __future__ import annotations

import json
import time

import pytest
from prefect import flow

from flows.rollback import rollback_recorded
from rollway.approvals import auto_approve
from rollway.aws.sns import SnsNotifier
from rollway.aws.flags import DynamoFlagStore
from rollway.aws.ledger import DynamoLedger
from rollway.flag_binding import FlagHeld, apply_bindings
from rollway.flags import FlagState
from rollway.ledger import RolloutRecord, new_rollout_id
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment
from tests.flows.moto_env import inbox
from tests.flows.test_progressive_fakes import IMAGE, progressive_on

F = "use_sqs_architecture"
BOUND = [FlagBinding(feature=F)]
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)], flags=BOUND,
                   monitor_seconds=0)
BILLING = "webordinary-billing-service-canary"


class OtherWritesFirst(DynamoFlagStore):
    """The billing rollout's 5 % stage lands just before this rollout's first write of the flag,
    after this rollout's start check found it free."""

    def __init__(self, client, targets, other: str) -> None:
        super().__init__(client, targets)
        self.other, self.landed = other, False

    def put(self, flag, **kwargs):
        if not self.landed:
            self.landed = True
            apply_bindings(self, BOUND, 5, actor="bob", now=time.time(), rollout=self.other)
        return super().put(flag, **kwargs)


def refused_rollout(aws):
    """This service's rollout, started with the billing rollout: its first write of the flag comes
    second and is refused (``FlagHeld``). Returns the environment and the billing rollout's id."""
    client = aws.get_client("dynamodb")
    env = fake_environment()
    env.ledger = DynamoLedger(client, aws.targets)
    billing = new_rollout_id(time.time())
    env.ledger.create(RolloutRecord(service=BILLING, rollout_id=billing, image="webordinary/billing:3.1.0",
                                    spec_json=SPEC.model_dump_json(), phase=RolloutPhase.PROGRESSING,
                                    previous_task_definition=STABLE_TD, stable_desired=4),
                      owner="process/billing", now=time.time(), lease_seconds=0)
    env.flags = OtherWritesFirst(client, aws.targets, billing)
    DynamoFlagStore(client, aws.targets).put(FlagState(feature=F), expected_version=0, actor="seed", now=1.0)
    return env, billing


def test_the_rollout_whose_first_flag_write_comes_second_is_refused_and_leaves_the_flag_alone(aws):
    env, billing = refused_rollout(aws)

    with pytest.raises(FlagHeld) as refused:
        progressive_on(env, SPEC, auto_approve())

    said = str(refused.value)
    assert f"follows rollout {billing}" in said and "after this rollout's start check" in said, said
    assert env.router.get_weights() == Weights(stable=100, canary=0), "the stage's traffic went back"
    # The run's failure hook rolls this rollout back: it disables the flags this rollout moved, none.
    rolled_back = hook_rollback_on(env)
    assert not any(F in step for step in rolled_back.steps if step.startswith("flags disabled")), rolled_back.steps
    flag = env.flags.get(F)
    assert (flag.enabled, flag.percentage) == (True, 5.0), "the billing rollout's users keep the flag at its stage"
    newest = env.flags.audit(F)[0]
    assert (newest.writer, newest.rollout) == ("rollout", billing), "nothing of the refused rollout in the trail"
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.ROLLED_BACK


@flow
def hook_rollback_on(env):
    return rollback_recorded(env, "the first stage failed", actor="state hook")


def test_the_rollback_says_which_flag_it_left_to_the_other_rollout_in_its_steps_page_and_ledger(aws):
    """On-call, reading "flags disabled: none needed" and a page silent on the flag, took the
    feature to be off for everyone while it served the billing rollout's users at its 5 % stage:
    the flag left to that rollout is named in the rollback's steps, its page and its ledger entry."""
    env, billing = refused_rollout(aws)
    env.notifier = SnsNotifier(aws.get_client("sns"), aws.targets)
    url = inbox(aws)
    with pytest.raises(FlagHeld):
        progressive_on(env, SPEC, auto_approve())

    rolled_back = hook_rollback_on(env)

    said = f"{F}: left on 5% (v"
    left = [step for step in rolled_back.steps if step.startswith("flag left as it is: ")]
    assert len(left) == 1 and said in left[0] and f"rollout {billing}" in left[0] and "never set it" in left[0], \
        rolled_back.steps
    pages = [json.loads(m["Body"]) for m in aws.get_client("sqs").receive_message(
        QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])]
    page = next(p["Message"] for p in pages if p["Subject"].startswith("Rollback: "))
    line = next((ln for ln in page.splitlines() if "LEFT AS IT IS" in ln), None)
    assert line is not None and said in line and f"rollout {billing}" in line, page
    assert "Feature flags disabled" not in page, page
    record = env.ledger.get(env.targets.canary_service)
    flags = [t.comment for t in record.history if t.kind == "flag"]
    assert any(said in c and f"rollout {billing}" in c for c in flags), flags
