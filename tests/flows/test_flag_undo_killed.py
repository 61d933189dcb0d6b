"""A run killed while a stage's shift was being undone: the weights went back to the stage before
(Prefect's transaction undoes them as the kill leaves the flags' task), the bound flag not (it was
written for the new stage, and its put-back never ran). The ledger and the load balancer agree on
the stage before, so the resume found nothing to reconcile and baked that stage with the flag a
stage ahead of the traffic, its move recorded nowhere. On the embedded AWS (flags table and ledger)."""

from __future__ import annotations

from rollway.approvals import auto_approve
from rollway.aws.flags import DynamoFlagStore
from rollway.model import Weights
from rollway.spec import FlagBinding, RolloutSpec, Stage
from tests.flows.test_flag_resume_race import F, killed_run
from tests.flows.test_progressive_fakes import IMAGE, Killed, progressive_on

SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 50, 100)],
                   flags=[FlagBinding(feature=F)], monitor_seconds=0)


class DiesAfterTheFiftyStageWrite(DynamoFlagStore):
    """The process dies once the 50 % stage's write of the flag has landed, before the stage ends."""

    def __init__(self, client, targets) -> None:
        super().__init__(client, targets)
        self.died = False

    def put(self, flag, **kwargs):
        after = super().put(flag, **kwargs)
        if not self.died and "stage 50%" in kwargs.get("reason", ""):
            self.died = True
            raise Killed("dies after the 50% stage wrote the flag")
        return after


def test_a_resume_brings_a_flag_left_a_stage_ahead_back_to_the_recorded_stage_and_records_it(aws):
    env = killed_run(aws, DiesAfterTheFiftyStageWrite, SPEC)
    service = env.targets.canary_service
    recorded = env.ledger.get(service)
    assert recorded.weights == Weights(stable=95, canary=5) and recorded.owner is not None, recorded
    # The shift's undo put the traffic back on the 5 % stage; the kill left the flag at 50 %.
    assert env.router.get_weights() == Weights(stable=95, canary=5)
    flag = env.flags.get(F)
    assert (flag.enabled, flag.percentage) == (True, 50.0), flag
    killed_at = flag.version

    progressive_on(env, SPEC, auto_approve())

    # Oldest first: the 50 % write of the killed run, then the resume's; between them, the flag back at 5 %.
    trail = [e for e in reversed(env.flags.audit(F)) if e.version > killed_at]
    assert trail and (trail[0].enabled, trail[0].percentage) == (True, 5.0), \
        [(e.version, e.percentage, e.reason) for e in trail]
    assert trail[0].rollout == recorded.rollout_id
    resumed = env.ledger.get(service).history[len(recorded.history):]
    back = next((i for i, t in enumerate(resumed) if t.kind == "flag" and "on 50% -> on 5%" in t.comment), None)
    first_shift = next(i for i, t in enumerate(resumed) if t.kind == "shift")
    assert back is not None and back < first_shift, [(t.kind, t.comment) for t in resumed]
