"""The canary flow's logic on fakes: promote, roll back, pause answers, read-back failures."""

from __future__ import annotations

import pytest
from prefect import flow

from flows.canary import RolloutRefused, run_canary
from flows.rollback import execute_rollback
from rollway.approvals import ApprovalAnswer, scripted
from rollway.aws.errors import WeightMismatch
from rollway.model import Weights
from rollway.phases import Phase, RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


def spec(*weights: int, approval_at: tuple[int, ...] = ()) -> RolloutSpec:
    return RolloutSpec(
        image=IMAGE,
        stages=[Stage(weight=w, bake_seconds=600, approval=w in approval_at) for w in weights],
    )


@flow
def canary_on(env, rollout: RolloutSpec, approver=None):
    return run_canary(env, rollout, approver or scripted())


def test_healthy_canary_is_promoted_through_every_stage():
    env = fake_environment(canary_error_rate=0.0)
    result = canary_on(env, spec(5, 25, 100))
    assert result.outcome == "promoted"
    assert env.router.weights == Weights(stable=0, canary=100)
    assert [s.weights.canary for s in result.stages] == [5, 25, 100]
    assert all(s.verdict.phase == "successful" for s in result.stages)
    # The canary runs the new image, on a revision copied from the stable one.
    canary = env.deployer.services[env.targets.canary_service]
    assert env.deployer.task_definitions[canary.task_definition] == IMAGE
    assert canary.desired == 4  # full capacity at 100%
    subjects = [s for s, _ in env.notifier.messages]
    assert subjects[0].startswith("Rollout starting") and subjects[-2].startswith("Rollout complete")
    assert subjects[-1].startswith("Monitoring passed"), "the default hour after promotion was watched"


def test_the_hour_before_a_stage_is_read_once_per_stage():
    env = fake_environment(canary_error_rate=0.0)
    result = canary_on(env, spec(5, 25, 100))
    assert result.outcome == "promoted"
    hour = [w for w in env.metrics.windows if w[1] - w[0] == 3600]
    # The judge calibrates on it in the two-sample stages (5 % and 25 %); the guardrail measures
    # the load balancer's own 5xx in it before every stage, the 100 % one (judged against the SLO) too.
    assert len(hour) == 3 and len(env.metrics.windows) > 10
    starts = [s.started_at for s in result.stages]
    assert all(start <= end <= start + 120 for (_, end), start in zip(hour, starts)), (hour, starts)

    env = fake_environment(canary_error_rate=0.0)
    off = spec(5, 25, 100)
    off = off.model_copy(update={"analysis": off.analysis.model_copy(update={"calibration_seconds": 0})})
    canary_on(env, off)
    # 0 turns the judge's calibration off, not the guardrail's read of the load balancer's 5xx.
    assert len([w for w in env.metrics.windows if w[1] - w[0] == 3600]) == 3


def test_bad_canary_is_rolled_back_at_the_first_stage():
    env = fake_environment(canary_error_rate=0.05)
    result = canary_on(env, spec(5, 25, 100))
    assert result.outcome == "rolled_back"
    assert len(result.stages) == 1 and result.stages[0].weights.canary == 5
    # The guardrail acts on the first minute (the judge waits for a second one: one minute of a
    # canary it has not yet seen to be steady could be a burst of its own).
    assert "5.00%" in result.reason and "guardrail" in result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    canary = env.deployer.services[env.targets.canary_service]
    assert canary.desired == 0 and canary.task_definition == STABLE_TD
    assert env.notifier.messages[-1][0].startswith("Rollback")
    assert result.reason in env.notifier.messages[-1][1]


def test_a_canary_runs_rollback_names_no_report_the_ledger_cannot_give(caplog):
    """A `canary` flow run keeps no ledger: its rollback's page and its log's "Next:" told people to
    run `rollway report --rollout canary-...`, which finds no record of that id (in `rollway demo`,
    the first next step a person evaluating rollway reads). They say where to look instead."""
    env = fake_environment(canary_error_rate=0.05)
    with caplog.at_level("INFO"):
        assert canary_on(env, spec(5, 25, 100)).outcome == "rolled_back"
    subject, page = env.notifier.messages[-1]
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("rolled back ")]
    assert subject.startswith("Rollback") and said, caplog.text
    for text in (page, said[0]):
        assert "rollway report" not in text, text
        assert "look at the canary's logs and metrics since the rollout began before trying again." in text, text


def test_rollback_moves_traffic_before_scaling_the_canary_down():
    env = fake_environment(canary_error_rate=0.05)
    canary_on(env, spec(5, 100))
    calls = env.router.calls + env.deployer.calls  # both lists, order within each kept
    back = env.router.calls.index("set_weights 100/0")
    assert back > env.router.calls.index("set_weights 95/5")
    scale_down = [c for c in env.deployer.calls if "desired=0" in c]
    assert scale_down, calls


@flow
def rollback_on(env, stable_desired):
    return execute_rollback(env, "test", actor="on-call", stable_desired=stable_desired)


@pytest.mark.parametrize(("scale_fails", "flag_fails"), [(False, False), (True, False), (False, True)],
                         ids=["restore fails", "restore and scale fail", "restore and a flag fail"])
def test_a_rollback_step_that_fails_after_the_traffic_moved_does_not_stop_the_others(scale_fails, flag_fails,
                                                                                    ecs_updates_retried_at_once):
    from flows.rollback import RollbackIncomplete
    from rollway.fakes import FlakyFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    env = fake_environment()
    env.flags = FlakyFlagStore([FlagState(feature="new_checkout", enabled=True, percentage=10),
                                FlagState(feature="old_editor", enabled=True, percentage=10)],
                               failing=["old_editor"] if flag_fails else [])
    env.router.set_weights(Weights(stable=90, canary=10))
    canary_service = env.targets.canary_service
    env.deployer.services[canary_service] = env.deployer.services[canary_service].model_copy(
        update={"desired": 2, "running": 2})
    real_update = env.deployer.update_service

    def update_service(service, *, task_definition=None, desired=None):
        if service == env.targets.canary_service and (task_definition is not None or scale_fails):
            raise RuntimeError(f"no task definition {task_definition}")
        return real_update(service, task_definition=task_definition, desired=desired)

    env.deployer.update_service = update_service

    @flow
    def rollback(env):
        return execute_rollback(env, "error rate 7%", previous_task_definition="typo:1",
                                bindings=[FlagBinding(feature="new_checkout"), FlagBinding(feature="old_editor")])

    with pytest.raises(RollbackIncomplete, match="could not: restore .*typo:1") as failed:
        rollback(env)
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.flags.get("new_checkout").enabled is False
    canary = env.deployer.services[env.targets.canary_service]
    assert canary.desired == (2 if scale_fails else 0)
    subject, body = env.notifier.messages[-1]
    assert subject.startswith("Rollback") and "typo:1 FAILED" in body
    assert ("Scaling" in body and "FAILED too" in body) is scale_fails
    assert ("Feature flags NOT disabled: old_editor" in body) is flag_fails
    assert len(failed.value.failed_steps) == (2 if scale_fails or flag_fails else 1)
    if flag_fails:
        assert failed.value.failed_steps[-1].startswith("disable every bound flag") and "old_editor" in str(failed.value)


def test_a_rollback_never_scales_the_stable_service_below_what_it_asks_for():
    """Autoscaling raised stable to 6 since the rollout recorded 2; only 1 task runs yet."""
    env = fake_environment()
    stable = env.targets.stable_service
    env.deployer.services[stable] = env.deployer.services[stable].model_copy(update={"desired": 6, "running": 1})
    result = rollback_on(env, stable_desired=2)
    assert env.deployer.services[stable].desired == 6
    assert result.scaled_stable and result.stable_desired == 6
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_rollback_scales_the_stable_service_back_if_a_decommission_raced_it():
    """The monitor's decommission lands after the rollback checked the stable service and
    before it moved the traffic: the rollback looks again once stable carries everything."""
    env = fake_environment()
    stable = env.targets.stable_service
    real_set = env.router.set_weights

    def decommission_lands_first(weights):
        if weights.stable == 100:
            env.deployer.update_service(stable, desired=0)  # the racing monitor
        return real_set(weights)

    env.router.set_weights = decommission_lands_first
    result = rollback_on(env, stable_desired=None)
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[stable].desired == 4, "scaled back to what it ran before"
    assert result.scaled_stable and any("scaled to 0 during the rollback" in s for s in result.steps)


def test_the_baseline_history_of_a_stage_ends_before_the_period_of_its_shift():
    """Its last period holds the shift (two weightings) and has not ended on the stage's first tick."""
    from rollway.fakes import FakeClock

    env = fake_environment()
    env.clock = FakeClock(start=1_800_000_030.5)  # shifts land mid-period
    reads, real = [], env.metrics.observe

    def observe(start, end):
        reads.append((start, end, env.clock.now()))
        return real(start, end)

    env.metrics.observe = observe
    assert canary_on(env, spec(5, 100)).outcome == "promoted"
    history = [(start, end, now) for start, end, now in reads if end - start == 3600]
    assert len(history) == 2, reads  # one before each stage
    for _start, end, now in history:
        assert end <= now and end % 60 == 0, (end, now)


def test_approval_pause_approve_then_reject():
    env = fake_environment()
    answers = scripted(
        ApprovalAnswer(action="approve", approver="alice", comment="looks good"),
        ApprovalAnswer(action="reject", approver="bob", comment="support tickets up"),
    )
    result = canary_on(env, spec(5, 25, 50, 100, approval_at=(25, 50)), answers)
    assert result.outcome == "rolled_back"
    assert "bob" in result.reason and "support tickets up" in result.reason
    assert [s.weights.canary for s in result.stages] == [5, 25]
    assert env.router.weights == Weights(stable=100, canary=0)


def test_weight_read_back_mismatch_fails_the_stage():
    env = fake_environment()
    env.router.lag = 10_000  # the load balancer never shows the new weights
    rollout = spec(5, 100).model_copy(update={"verify_timeout_seconds": 0.2})
    with pytest.raises(WeightMismatch):
        canary_on(env, rollout)


def test_refuses_to_start_when_canary_already_has_traffic():
    env = fake_environment()
    env.router.weights = Weights(stable=75, canary=25)
    with pytest.raises(RolloutRefused, match="already carries 25%"):
        canary_on(env, spec(5, 100))
    assert env.deployer.calls == []  # nothing was registered or scaled


@pytest.mark.parametrize("newest", [None, RolloutPhase.ROLLED_BACK])
def test_traffic_no_ledgered_rollout_holds_is_refused_with_advice_that_works(monkeypatch, capsys, newest):
    """Traffic on the canary with no rollout under way in the ledger (a `canary` flow run that died,
    weights moved by hand): the refusal said "roll back (rollway abort)", which answers "nothing to
    abort" there. It names the rollback flow, which does roll it back."""
    import time
    from uuid import uuid4

    import flows.rollback
    import rollway.cli.ops as ops
    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutRecord, new_rollout_id

    env = fake_environment()
    env.ledger = FakeLedger()
    t = env.targets
    if newest is not None:
        old = spec(5, 100)
        env.ledger.create(RolloutRecord(service=t.canary_service, rollout_id=new_rollout_id(time.time() - 3600),
                                        image=old.image, spec_json=old.model_dump_json(), phase=newest,
                                        previous_task_definition=STABLE_TD, stable_desired=4),
                          owner="process/old", now=time.time() - 3600, lease_seconds=0)
    env.router.weights = Weights(stable=75, canary=25)

    with pytest.raises(RolloutRefused, match="already carries 25%") as refused:
        canary_on(env, spec(5, 100))

    said = " ".join(str(refused.value).split())
    assert "roll it back with the `rollback` flow" in said and "roll back (rollway abort)" not in said, said
    service = ops.Service(targets=t, targets_block=f"no-rollout-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    assert ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None) == 1
    # ...and says what does: abort rolls back only rollouts the ledger records as open.
    aborted = " ".join(capsys.readouterr().err.split())
    assert "nothing to abort" in aborted and "load balancer sends 25% of the traffic" in aborted, aborted
    assert "roll it back with the `rollback` flow" in aborted, aborted
    monkeypatch.setattr(flows.rollback, "load_environment", lambda *a, **k: env)
    flows.rollback.rollback(reason="left on the canary")
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_canary_runs_hook_whose_rollback_fails_names_the_rollback_flow(monkeypatch, caplog):
    """The `canary` flow keeps no ledger. When its hook's rollback failed (the load balancer refused
    the move to stable), the hook said to run `rollway abort` by hand, which finds no rollout to abort."""
    import logging

    from botocore.exceptions import ClientError

    from flows.canary import canary
    from tests.flows.test_refusals import hooks_and_flows_see

    env = fake_environment()
    hooks_and_flows_see(monkeypatch, env)
    real_observe, real_set = env.metrics.observe, env.router.set_weights

    def observe(start, end):
        if env.router.weights.canary == 5:
            raise RuntimeError("a bug mid-stage")
        return real_observe(start, end)

    def refuse_stable(weights):
        if weights.canary == 0:
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not authorized"}}, "ModifyRule")
        return real_set(weights)

    env.metrics.observe = observe
    monkeypatch.setattr(env.router, "set_weights", refuse_stable)
    with caplog.at_level(logging.INFO):
        state = canary(spec=spec(5, 100).model_dump(mode="json"), return_state=True)

    assert state.is_failed() and env.router.weights.canary == 5
    said = caplog.text
    assert "automatic rollback after" in said and "run the `rollback` flow (the rollback deployment) by hand" in said, said
    assert "run `rollway abort` by hand" not in said, said
    # The page on-call gets says the same: it offered `rollway abort`, which has nothing to roll back.
    [(subject, page)] = [m for m in env.notifier.messages if m[0].startswith("Rollback FAILED")]
    page = " ".join(page.split())
    assert "Run the rollback again (the `rollback` flow (the rollback deployment)" in page, page
    assert "(`rollway abort`, or the rollback flow)" not in page, page


def test_approver_can_skip_ahead_to_a_later_stage_but_not_elsewhere():
    env = fake_environment()
    answers = scripted(
        ApprovalAnswer(action="approve", approver="alice", next_weight=30),  # not a stage: asked again
        ApprovalAnswer(action="approve", approver="alice", next_weight=75),  # skip 50
    )
    result = canary_on(env, spec(5, 25, 50, 75, 100, approval_at=(25,)), answers)
    assert result.outcome == "promoted"
    assert [s.weights.canary for s in result.stages] == [5, 75, 100]


class LateErrors:
    """CloudWatch as it behaves: a period's 5xx count lands a minute after its request count."""

    def __init__(self, metrics, clock, delay: float = 60.0) -> None:
        self.metrics, self.clock, self.delay = metrics, clock, delay

    def observe(self, start: float, end: float):
        observation = self.metrics.observe(start, end)
        landed = self.clock.now() - self.delay

        def as_read(interval):
            if interval.t <= landed or interval.canary is None:
                return interval
            return interval.model_copy(update={"canary": interval.canary.model_copy(update={"errors": 0})})

        return observation.model_copy(update={"intervals": tuple(as_read(i) for i in observation.intervals)})


def test_a_stage_never_passes_on_a_period_whose_5xx_count_has_not_landed():
    env = fake_environment(canary_error_rate=0.05)
    env.metrics = LateErrors(env.metrics, env.clock)
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600, min_bake_seconds=60),
                                               Stage(weight=100, bake_seconds=600)])
    result = canary_on(env, rollout)
    # The newest period read 0 errors of 15,000; once its count landed it held 750.
    assert result.outcome == "rolled_back", result.reason
    assert [s.weights.canary for s in result.stages] == [5]
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_canary_the_circuit_breaker_rolled_back_gets_no_traffic():
    # ECS rolls the canary's new revision back while it is scaled up for the first stage: the
    # canary is steady again, on the stable version. Sending it traffic would judge old against old.
    env = fake_environment(canary_error_rate=0.0)
    env.deployer.rolls_back = {env.targets.canary_service}
    with pytest.raises(Exception, match="runs .*task-definition/webordinary-edit-task:1, not .*edit-task:100"):
        canary_on(env, spec(5, 100))
    assert all(not c.startswith("set_weights") or c.endswith("100/0") or "stable=100" in c
               for c in env.router.calls), env.router.calls
    assert env.router.weights == Weights(stable=100, canary=0)


# --- the canary is judged while a pause waits for a person ----------------------------------------

APPROVE = ApprovalAnswer(action="approve", approver="alice", comment="go on")


def turns_bad_when_asked(env, approver, error_rate: float = 0.05):
    """``approver``, the canary's errors rising to ``error_rate`` as its pause begins."""
    from rollway.fakes import steady

    def answer(pause, summary, watch=None):
        env.metrics.behaviour = steady(5000.0, 0.001, error_rate)
        return approver(pause, summary, watch=watch)

    return answer


def noting_when_asked(env, approver):
    """``approver``, and the rollout clock's times it was asked at."""
    asked_at: list[float] = []

    def asked(pause, summary, watch=None):
        asked_at.append(env.clock.now())
        return approver(pause, summary, watch=watch)

    return asked, asked_at


def test_a_canary_that_fails_during_an_approval_pause_is_rolled_back_before_anyone_answers(caplog):
    import logging

    env = fake_environment(canary_error_rate=0.0)
    # The person would answer an hour later: the judge rolls back long before.
    person = scripted(APPROVE, clock=env.clock, after_seconds=3600)
    asked, asked_at = noting_when_asked(env, turns_bad_when_asked(env, person))

    with caplog.at_level(logging.INFO):
        result = canary_on(env, spec(5, 25, 100, approval_at=(25,)), asked)
    assert result.outcome == "rolled_back", result.reason
    assert result.reason.startswith("5%: ") and "guardrail" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.notifier.messages[-1][0].startswith("Rollback") and result.reason in env.notifier.messages[-1][1]
    said = [r.getMessage() for r in caplog.records if r.name.startswith("prefect.flow_runs")]
    assert any("the canary failed the judge while the run waited for an answer" in m for m in said), said
    assert "while the run waited for an answer" in result.reason
    # Rolled back within minutes of the pause, not at the answer an hour later.
    assert result.rollback is not None
    # The stage passed, and its row stays as it passed; the rollback at that weight has a row of its
    # own, counting what the pause's looks judged: the table showed a passed 5 % and no rollback.
    passed, rolled = result.stages
    assert (passed.decision, rolled.decision) == ("passed", "rollback during the approval pause")
    assert rolled.weights == passed.weights == Weights.canary_at(5)
    assert rolled.started_at == asked_at[0] and asked_at[0] < rolled.ended_at <= asked_at[0] + 600, rolled
    assert rolled.verdict.phase is Phase.FAILED and rolled.canary.errors > 0 and passed.canary.errors == 0
    # Said once, by the look that found it: "rolling back: <the same reason>" followed it.
    assert sum(result.reason.split(" (judged")[0] in m for m in said) == 1, said


def test_a_healthy_canary_during_an_approval_pause_waits_for_the_answer(caplog):
    import logging

    env = fake_environment(canary_error_rate=0.0)
    asked, began = noting_when_asked(env, scripted(APPROVE, clock=env.clock, after_seconds=3600))

    with caplog.at_level(logging.INFO):
        result = canary_on(env, spec(5, 25, 100, approval_at=(25,)), asked)
    assert result.outcome == "promoted", result.reason
    # Looked at every minute while it waited, on a window from the pause's start, each look said.
    during = [w for w in env.metrics.windows if began[0] < w[1] < began[0] + 3600]
    looks = [r.getMessage() for r in caplog.records if "still waiting for an answer" in r.getMessage()]
    assert len(looks) == len(during) and looks[0].startswith("paused at 5%: the judge looked again: "), looks[:1]
    # How near the guardrails the canary is, as a stage's looks say it.
    assert ("; guardrails: canary error rate 0.00% (the stage's error-rate guardrail, canary_error_rate: rolls back "
            "over 1%; the monitoring window's after promotion, monitor_error_rate: 5%), average response 0.12 s"
            in looks[-1]), looks[-1]
    assert len(during) >= 59 and began[0] <= during[0][0] < began[0] + 60, during[:3]
    # Never longer than the stage's bake (600 s): an hour's window read and judged at every look
    # grew with the pause, for weeks when its timeouts held.
    assert max(end - start for start, end in during) <= 600, max(end - start for start, end in during)


def test_the_summary_says_the_canary_is_judged_meanwhile_only_to_an_approver_given_the_watch():
    """A custom approver of the two-argument form is never given the watch: nothing is judged
    while it waits, and its summary (sent on by it, to a chat or a ticket) said the run rolls
    back on its own meanwhile."""
    summaries: dict[str, list[str]] = {"two": [], "watched": []}

    def two_arguments(pause, summary):
        summaries["two"].append(summary)
        return APPROVE

    def watched(pause, summary, watch=None):
        summaries["watched"].append(summary)
        return APPROVE

    for approver in (two_arguments, watched):
        assert canary_on(fake_environment(canary_error_rate=0.0), spec(5, 25, 100, approval_at=(25,)),
                         approver).outcome == "promoted"
    assert len(summaries["two"]) == len(summaries["watched"]) == 1, summaries
    assert "keeps judging the canary" not in summaries["two"][0], summaries["two"][0]
    assert "keeps judging the canary" in summaries["watched"][0], summaries["watched"][0]


def moved_by_hand(env):
    env.router.weights = Weights(stable=50, canary=50)


def stopped_by_hand(env):
    env.deployer.update_service(env.targets.canary_service, desired=0)


@pytest.mark.parametrize(("meanwhile", "said"), [(moved_by_hand, "moved by someone else"),
                                                 (stopped_by_hand, "scaled to 0 by someone else")],
                         ids=["weights moved", "canary scaled to 0"])
def test_what_someone_else_changes_during_a_pause_rolls_back_without_an_answer(meanwhile, said, caplog):
    import logging

    env = fake_environment(canary_error_rate=0.0)
    person = scripted(APPROVE, clock=env.clock, after_seconds=3600)

    def asked(pause, summary, watch=None):
        meanwhile(env)
        return person(pause, summary, watch=watch)

    # The drift check reads moved weights again for up to this long (wall seconds) before it believes them.
    rollout = spec(5, 25, 100, approval_at=(25,)).model_copy(update={"verify_timeout_seconds": 0.2})
    with caplog.at_level(logging.INFO):
        result = canary_on(env, rollout, asked)
    assert result.outcome == "rolled_back"
    assert said in result.reason and "instead of waiting for an answer" in result.reason, result.reason
    # The drift is logged once, where it was found; the rollback path said it a second time.
    logged = [r.getMessage() for r in caplog.records if said in r.getMessage()]
    assert len(logged) == 1, logged
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_pause_before_the_first_stage_is_not_watched():
    env = fake_environment(canary_error_rate=0.0)
    looked: list = []

    def person(pause, summary, watch=None):
        looked.append(watch)
        return APPROVE

    result = canary_on(env, spec(5, 100, approval_at=(5,)), person)
    assert result.outcome == "promoted"
    assert looked == [None]


def test_a_hold_at_an_approval_pause_is_judged_before_the_pause_is_asked_again():
    env = fake_environment(canary_error_rate=0.0)
    from rollway.fakes import steady

    hold = ApprovalAnswer(action="hold", approver="alice", comment="wait for the release notes")
    # Two-argument: it never calls the watch, so only the hold's own look can see the canary fail.
    answers = iter([hold, APPROVE])

    def person(pause, summary):
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        return next(answers)

    result = canary_on(env, spec(5, 25, 100, approval_at=(25,)), person)
    assert result.outcome == "rolled_back", result.reason
    # Rolled back at 5 %, on the look after the hold: the approval given next was never asked for.
    assert result.reason.startswith("5%: ") and "guardrail" in result.reason, result.reason
    assert Weights.canary_at(25) not in [s.weights for s in result.stages]
    assert next(answers, None) is APPROVE


def test_a_hold_naming_a_next_weight_is_refused_and_asked_again(caplog):
    import logging

    env = fake_environment(canary_error_rate=0.0)
    answers = scripted(ApprovalAnswer(action="hold", approver="alice", next_weight=100), APPROVE)
    asked: list[str] = []

    def person(pause, summary, watch=None):
        asked.append(summary)
        return answers(pause, summary, watch=watch)

    with caplog.at_level(logging.WARNING):
        result = canary_on(env, spec(5, 25, 100, approval_at=(25,)), person)
    assert result.outcome == "promoted"
    assert [s.weights.canary for s in result.stages] == [5, 25, 100], "the hold's weight was not skipped to"
    assert len(asked) == 2 and "next_weight" in asked[1] and "hold" in asked[1], asked[1]
    assert any("hold not applied" in r.getMessage() for r in caplog.records)


def test_a_stage_the_judge_could_not_decide_is_judged_on_while_its_pause_waits():
    """Too little traffic: the 5 % stage ends inconclusive and asks a person. The traffic comes
    back with the canary failing: the stage's own window, judged on, rolls back, and its row says so."""
    from rollway.fakes import steady

    env = fake_environment(rps=0.01)
    person = scripted(APPROVE, clock=env.clock, after_seconds=3600)
    causes = []

    def asked(pause, summary, watch=None):
        causes.append(pause.cause)
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        return person(pause, summary, watch=watch)

    result = canary_on(env, spec(5, 25, 100), asked)
    assert causes == ["inconclusive"]
    assert result.outcome == "rolled_back" and result.reason.startswith("5%: "), result.reason
    assert [(s.weights.canary, s.decision) for s in result.stages] == [(5, "rollback")]
    assert result.stages[0].canary.errors > 0


def test_an_approval_given_between_two_looks_does_not_shift_a_canary_failing_by_then(caplog):
    """The person answers approve five minutes into the pause, through an approver that never
    calls the watch: the look made before the approval is taken finds the canary failing."""
    import logging

    from rollway.fakes import steady

    env = fake_environment(canary_error_rate=0.0)

    def person(pause, summary):
        env.metrics.behaviour = steady(5000.0, 0.001, 0.05)
        env.clock.sleep(300)
        return APPROVE

    with caplog.at_level(logging.WARNING):
        result = canary_on(env, spec(5, 25, 100, approval_at=(25,)), person)
    assert result.outcome == "rolled_back", result.reason
    assert result.reason.startswith("5%: ") and "judged when an approval came" in result.reason, result.reason
    assert [(s.weights.canary, s.decision) for s in result.stages] == [
        (5, "passed"), (5, "rollback during the approval pause")]
    assert any("alice's answer (approve) not applied: the run's look at the canary came first" in r.getMessage()
               for r in caplog.records)


def test_a_stage_accepted_after_an_hour_long_pause_ends_when_it_was_accepted():
    """The stage is judged while its pause waits: its row ends at the answer, not at the pause's start."""
    env = fake_environment(rps=0.01)  # too little traffic: the 5 % stage ends inconclusive
    accept = ApprovalAnswer(action="approve", approver="alice", comment="accept")
    asked, asked_at = noting_when_asked(env, scripted(accept, accept, clock=env.clock, after_seconds=3600))

    result = canary_on(env, spec(5, 100), asked)
    first = result.stages[0]
    assert first.decision == "accepted by alice"
    assert first.ended_at == asked_at[0] + 3600, (first.ended_at - asked_at[0])


def test_on_a_clock_faster_than_the_wall_a_deploys_try_again_still_waits_a_wall_second(monkeypatch):
    """`rollway up`'s 60x clock sleeps 1/60 of what it is asked: ECS's throttling is on the wall
    clock, and a pointing tried again 16 ms after a throttled one met the same throttle."""
    from botocore.exceptions import ClientError

    import tasks.undoable

    env = fake_environment(canary_error_rate=0.0)
    monkeypatch.setattr(env.clock, "speed", 60.0, raising=False)
    waits: list[float] = []
    sleep = env.clock.sleep
    monkeypatch.setattr(env.clock, "sleep", lambda seconds: (waits.append(seconds), sleep(seconds)))
    update, failed = env.deployer.update_service, []

    def throttled_once(service, **changes):
        if not failed and "task_definition" in changes:
            failed.append(service)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateService")
        return update(service, **changes)

    monkeypatch.setattr(env.deployer, "update_service", throttled_once)
    result = canary_on(env, spec(5, 100))
    assert result.outcome == "promoted", result.reason
    assert failed == [env.targets.canary_service]
    first = tasks.undoable.UNDO_FIRST_DELAY_SECONDS
    assert waits[0] == first * 60, f"asked the rollout clock for {waits[0]} s: {waits[0] / 60} s of wall time"


def stage_reads_answered(env, monkeypatch, failing):
    """The 5 % stage's metric reads (not the hour-long baseline history) go through ``failing(now,
    reads)``: an error it returns is the read's, None reads the fakes. The reads' times, in a list."""
    from rollway.model import Observation

    observe, reads = env.metrics.observe, []

    def reading(start, end):
        if env.router.weights.canary == 5 and end - start < 3600:
            reads.append(env.clock.now())
            error = failing(reads[-1], reads)
            if error is not None:
                return Observation(start=start, end=end, error=error)
        return observe(start, end)

    monkeypatch.setattr(env.metrics, "observe", reading)
    return reads


def test_a_throttled_final_look_is_read_again_and_the_healthy_stage_passes(monkeypatch):
    """CloudWatch throttled the GetMetricData of the 5 % stage's last looks, its final one too: the stage paused
    for a person (a "metrics" pause), paging on-call over a healthy canary, where a read seconds
    later would have passed it. The final look is read again, 15 s later, and the stage passes."""
    from rollway.decide import StageState, stage_end

    env = fake_environment(canary_error_rate=0.0)
    rollout = spec(5, 100)
    throttled = []

    def throttled_at_the_end(now, reads):
        ends = stage_end(rollout, StageState(stage_index=0, started_at=reads[0]))
        # Throttled from the minimum bake (600 s) through the stage's end (plus the metrics' delay).
        if now >= reads[0] + 600 and (not throttled or throttled[-1] < ends):
            throttled.append(now)
            return ("metrics for the window unavailable: An error occurred (Throttling) when calling the "
                    "GetMetricData operation: Rate exceeded")
        return None

    reads = stage_reads_answered(env, monkeypatch, throttled_at_the_end)
    result = canary_on(env, rollout, scripted())  # no answer scripted: a pause would fail the run
    assert throttled, "the final look was never throttled: the test did not test it"
    assert result.outcome == "promoted", result.reason
    assert result.stages[0].verdict.phase == "successful"
    assert reads[-1] == throttled[-1] + 15, (reads, throttled)


def test_a_final_look_whose_reads_time_out_is_read_four_times_15_s_apart_as_its_pause_says(monkeypatch):
    """Each read at the stage's final look ran out its 15-s bound: the run slept 15 s after each,
    counted from before the read, so the reads were 30 s apart and the pause said "read 4 times
    over 45 s" after three. The looks are 15 s apart, start to start, and there are four."""
    from rollway.approvals import ApprovalAnswer
    from rollway.decide import StageState, stage_end

    env = fake_environment(canary_error_rate=0.0)
    rollout = spec(5, 100)
    failed = []

    def timing_out_at_the_end(now, reads):
        # From the minimum bake on (600 s): the stage reaches its end unpassed, for its final look.
        if now < reads[0] + 600:
            return None
        failed.append((now, now >= stage_end(rollout, StageState(stage_index=0, started_at=reads[0]))))
        env.clock.sleep(15)  # the read's bound, run out
        return "metrics for the window unavailable: CloudWatch did not answer within 15 s"

    stage_reads_answered(env, monkeypatch, timing_out_at_the_end)
    answer, asked = scripted(ApprovalAnswer(action="reject", approver="oncall", comment="no data")), []

    def approver(pause, summary, watch=None):
        asked.append(pause.reason)
        return answer(pause, summary, watch)

    result = canary_on(env, rollout, approver)
    assert result.outcome == "rolled_back", result.reason
    final = [t for t, over in failed if over]
    assert [b - a for a, b in zip(final, final[1:])] == [15, 15, 15], final
    assert len(asked) == 1 and "read 4 times over 45 s" in asked[0], asked


def rollback_by_hand_lands(env, when) -> None:
    """A person runs the `rollback` flow with no rollout id (a `canary` run keeps no ledger, so it
    has none to name) at the moment ``when(env)`` first says so, while the run shifts to 25 %."""
    from flows.rollback import rollback_recorded
    from rollway.spec import FlagBinding

    landed = []
    real_get, real_set = env.flags.get, env.router.set_weights

    def by_hand(point: str) -> None:
        if not landed and when(env, point):
            landed.append(point)
            rollback_recorded(env, "support tickets up", actor="on-call",
                              bindings=[FlagBinding(feature="new_checkout")])

    def get(feature):
        by_hand("flags")
        return real_get(feature)

    def set_weights(weights):
        if weights == Weights.canary_at(25):
            by_hand("weights")
        return real_set(weights)

    env.flags.get, env.router.set_weights = get, set_weights


@pytest.mark.parametrize("point", ["flags", "weights"],
                         ids=["after the shift's weights, before its flags", "before the shift's weights"])
def test_a_rollback_by_hand_during_a_shift_does_not_leave_the_flags_raised_for_the_stage(point):
    """The run checks the weights before each shift; a rollback by hand landing after that check
    and before the shift's flag write (blind: it names no rollout, so the flag's trail cannot tie
    it to this run) saw the flag raised to 25 % for the whole stage, on users of the stable
    version, until the next shift's check found the traffic moved."""
    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState
    from rollway.spec import FlagBinding

    env = fake_environment(canary_error_rate=0.0)
    env.flags = FakeFlagStore([FlagState(feature="new_checkout")])
    shifted_to_25 = (lambda env, at: at == point and env.router.weights == Weights.canary_at(25)) \
        if point == "flags" else (lambda env, at: at == point)
    rollback_by_hand_lands(env, shifted_to_25)
    rollout = spec(5, 25, 100).model_copy(update={"flags": (FlagBinding(feature="new_checkout"),),
                                                  "verify_timeout_seconds": 0.2})
    result = canary_on(env, rollout)
    assert result.outcome == "rolled_back", result.reason
    assert "by someone else" in result.reason, result.reason
    assert env.router.weights == Weights(stable=100, canary=0)
    flag = env.flags.get("new_checkout")
    assert not flag.enabled
    trail = env.flags.audit("new_checkout")
    raised = next(e for e in trail if e.enabled and e.percentage == 25)
    # Turned off again at once, not after the 25 % stage's bake (600 s of the rollout clock).
    assert trail[0].at - raised.at < 60, [(e.at, e.enabled, e.percentage, e.reason) for e in trail]
    assert not [s for s in result.stages if s.weights.canary == 25], result.stages


def test_the_starting_notice_names_the_approval_pauses_and_what_an_unanswered_one_does():
    """The starting notice tells people up front that the run will wait for them before 25 % and
    100 % (the defaults), and that nobody answering within the hour rolls a healthy canary back."""
    env = fake_environment(canary_error_rate=0.0)
    canary_on(env, spec(5, 25, 100, approval_at=(25, 100)), scripted(APPROVE, APPROVE))
    subject, body = env.notifier.messages[0]
    assert subject.startswith("Rollout starting"), subject
    assert body.endswith("automatic rollback on failure; approval before 25%, 100%: a pause unanswered for 1 h rolls "
                         "the rollout back (approvals.on_timeout: rollback; set approvals.on_timeout: hold to keep the "
                         "weights and ask again instead)."), body
    env = fake_environment(canary_error_rate=0.0)
    canary_on(env, spec(5, 100))
    assert env.notifier.messages[0][1].endswith("automatic rollback on failure."), env.notifier.messages[0][1]


def test_a_canary_run_tells_people_when_it_waits_for_them_as_a_progressive_run_does():
    """A `canary` run sent no notice when it paused: a person learnt of a pause only from the UI,
    and one left unanswered rolled a healthy canary back. Each pause is told once, in the
    progressive run's words; a hold's pause asked again is told again, saying who held."""
    env = fake_environment(canary_error_rate=0.0)
    hold = ApprovalAnswer(action="hold", approver="alice", comment="release\nnotes first")
    result = canary_on(env, spec(5, 25, 100, approval_at=(25, 100)), scripted(hold, APPROVE, APPROVE))
    assert result.outcome == "promoted", result.reason
    service = env.targets.canary_service
    waits = [(s, b) for s, b in env.notifier.messages if s.startswith("Rollout waits for a person")]
    assert [s for s, _b in waits] == [f"Rollout waits for a person: {service}",
                                      f"Rollout waits for a person again: {service}",
                                      f"Rollout waits for a person: {service}"], env.notifier.messages
    first = waits[0][1]
    assert first.startswith(f"{IMAGE} on {service} (traffic at 95/5, stable/canary) waits for an answer"), first
    assert "approval pause: " in first and "the rollout rolls back" in first, first
    assert first.endswith("`rollway hold` (keep the traffic where it is; asked again later) or `rollway abort` "
                          "(reject: roll back)."), first
    assert waits[1][1].startswith("alice answered hold (release notes first); asked again. "), waits[1][1]
    assert "(traffic at 75/25, stable/canary)" in waits[2][1], waits[2][1]


def test_a_canary_pause_nobody_answers_under_on_timeout_hold_is_told_once_not_at_every_timeout():
    """approvals.on_timeout: hold asks the same question again after each unanswered hour: each
    asking was told again, where the progressive run tells it once (nobody answered the first
    message, and one an hour would only bury it)."""
    from rollway.spec import Approvals

    env = fake_environment(canary_error_rate=0.0)
    unanswered = ApprovalAnswer(action="hold", approver="timeout", timed_out=True, comment="no answer within 3600 s")
    rollout = spec(5, 100, approval_at=(100,)).model_copy(update={"approvals": Approvals(on_timeout="hold")})
    result = canary_on(env, rollout, scripted(unanswered, unanswered, APPROVE))
    assert result.outcome == "promoted", result.reason
    waits = [s for s, _b in env.notifier.messages if s.startswith("Rollout waits for a person")]
    assert waits == [f"Rollout waits for a person: {env.targets.canary_service}"], env.notifier.messages


def test_a_hold_comment_with_control_characters_reaches_the_page_shown_escaped_on_one_line():
    """The hold's comment (and its approver's name) went into the page as typed, but for its line
    breaks: a comment pasted from a terminal, with an escape sequence or a carriage return, cleared
    or overwrote the page on-call read in a terminal mail client, and the approver's name too."""
    env = fake_environment(canary_error_rate=0.0)
    hold = ApprovalAnswer(action="hold", approver="alice\x1b[2J", comment="release\r\nnotes\x07 first\x1b[31m")
    result = canary_on(env, spec(5, 25, 100, approval_at=(25, 100)), scripted(hold, APPROVE, APPROVE))
    assert result.outcome == "promoted", result.reason
    again = [b for s, b in env.notifier.messages if s.startswith("Rollout waits for a person again")]
    assert again[0].startswith("alice\\x1b[2J answered hold (release notes\\x07 first\\x1b[31m); asked again. "), again
    assert not any(c in again[0] for c in "\x1b\x07\r"), again


@pytest.mark.parametrize(("queues", "said"), [
    ({"missing": ["webordinary-email-dlq"]}, "SQS did not find the dead-letter queue webordinary-email-dlq (dlq_name "
                                              "of work queue webordinary-email-queue) in us-west-2"),
    ({"redrives": {"webordinary-edit-input": ""}}, "the work queue webordinary-edit-input has no RedrivePolicy"),
    ({"failing": "ThrottlingException: Rate exceeded"}, "SQS did not answer the check that the watched queues exist"),
])
def test_a_dead_letter_queue_the_guardrail_cannot_watch_is_refused_before_any_write(queues, said):
    from rollway.fakes import FakeQueues

    env = fake_environment(canary_error_rate=0.0)
    env.queues = FakeQueues(env.targets, **queues)
    with pytest.raises(RolloutRefused, match=said.replace("(", r"\(").replace(")", r"\)")):
        canary_on(env, spec(5, 100))
    written = [c for c in env.deployer.calls + env.router.calls if c.startswith(("register", "update", "set_weights"))]
    assert not written and not env.notifier.messages, (written, env.notifier.messages)


def test_watched_queues_that_exist_let_the_rollout_start():
    from rollway.fakes import FakeQueues

    env = fake_environment(canary_error_rate=0.0)
    env.queues = FakeQueues(env.targets)
    assert canary_on(env, spec(5, 100)).outcome == "promoted"
    assert env.queues.calls == ["lookup"]


def _phased_rollout_paused_at(env, canary: int) -> str:
    """A phased rollout of webordinary/edit-container:1.9.0, paused with ``canary`` % in its ledger
    record, put in a fake ledger of ``env``'s; its id."""
    import time

    from rollway.fakes import FakeLedger
    from rollway.ledger import RolloutRecord, new_rollout_id

    env.ledger = FakeLedger()
    t, held = env.targets, spec(5, 25, 100).model_copy(update={"image": "webordinary/edit-container:1.9.0"})
    rollout = new_rollout_id(time.time() - 3600)
    env.ledger.create(RolloutRecord(service=t.canary_service, rollout_id=rollout, image=held.image,
                                    spec_json=held.model_dump_json(), phase=RolloutPhase.PAUSED,
                                    weights=Weights.canary_at(canary), previous_task_definition=STABLE_TD,
                                    stable_desired=4),
                      owner="process/old", now=time.time() - 3600, lease_seconds=0)
    return rollout


def test_traffic_of_a_ledgered_rollout_under_way_is_refused_saying_how_to_resume_it():
    """A phased rollout holds 25 % of the traffic between its weekly phases, and someone starts the
    `canary` flow: the refusal said "roll back (rollway abort) or resume that rollout", naming neither
    the rollout nor how to resume it (progressive_rollout needs the same image given again, which it
    did not name). It names the rollout and its image, and the flows that resume it."""
    env = fake_environment()
    rollout = _phased_rollout_paused_at(env, 25)
    env.router.weights = Weights(stable=75, canary=25)

    with pytest.raises(RolloutRefused, match="already carries 25%") as refused:
        canary_on(env, spec(5, 100))

    said = " ".join(str(refused.value).split())
    assert f"rollout {rollout} of webordinary/edit-container:1.9.0" in said, said
    assert "advance_phase" in said and "progressive_rollout of webordinary/edit-container:1.9.0" in said, said
    assert "`rollway abort`" in said and env.deployer.calls == [], said


def test_a_ledgered_rollout_with_no_traffic_yet_is_refused_saying_how_to_resume_it():
    """A phased rollout holds the canary before its first shift (waiting for its first approval, or
    its run ended), and someone starts the `canary` flow: the refusal said "let the rollout resume",
    naming no way to resume it. It says how, as the refusal of one that carries traffic does."""
    env = fake_environment()
    _phased_rollout_paused_at(env, 0)

    with pytest.raises(RolloutRefused, match="no traffic on it yet") as refused:
        canary_on(env, spec(5, 100))

    said = " ".join(str(refused.value).split())
    assert "answered with `rollway promote`" in said, said
    assert "advance_phase" in said and "progressive_rollout of webordinary/edit-container:1.9.0" in said, said
    assert "`rollway abort` rolls it back" in said and env.deployer.calls == [], said


class MovedMidBake:
    """The rollout clock of a run whose weights someone moves to 50/50 while the 5 % stage bakes
    (a person in the console, a stack update), after the stage's first look."""

    def __init__(self, env) -> None:
        self.env, self.inner, self.moved_at = env, env.clock, None

    def now(self) -> float:
        return self.inner.now()

    def sleep(self, seconds: float) -> None:
        self.inner.sleep(seconds)
        if self.moved_at is None and self.env.router.weights == Weights.canary_at(5):
            self.moved_at = self.inner.now()
            self.env.router.weights = Weights(stable=50, canary=50)


def test_weights_moved_during_a_stages_bake_are_found_at_its_next_look_not_at_the_next_shift(caplog):
    """Half the users on the canary mid-bake went unseen until the next shift, the whole bake (ten
    minutes here, hours on a real plan) later: the judge meanwhile judged a canary at 50 % as one at
    5 %. The bake's looks read the weights too (once per DRIFT_LOOK_SECONDS), and say the drift as a
    shift's check says it."""
    import logging

    env = fake_environment(canary_error_rate=0.0)
    env.clock = MovedMidBake(env)
    # The drift check reads moved weights again for up to this long (wall seconds) before it believes them.
    rollout = spec(5, 25, 100).model_copy(update={"verify_timeout_seconds": 0.2})
    with caplog.at_level(logging.INFO):
        result = canary_on(env, rollout)
    assert result.outcome == "rolled_back", result.reason
    assert "moved by someone else" in result.reason and "instead of baking the 5% stage" in result.reason, result.reason
    # At the first look DRIFT_LOOK_SECONDS after the last read, not at the end of the 600 s bake.
    from flows.engine import DRIFT_LOOK_SECONDS

    assert result.stages[-1].weights == Weights.canary_at(5)
    assert (result.stages[-1].ended_at - env.clock.moved_at
            <= DRIFT_LOOK_SECONDS + rollout.analysis.interval_seconds), result.stages[-1]
    assert result.stages[-1].ended_at < result.stages[-1].started_at + 600, result.stages[-1]
    assert env.router.weights == Weights(stable=100, canary=0)



def test_a_stages_looks_read_the_weights_once_each():
    """The bake's drift check is one read of the load balancer's weights a look (a DescribeRules),
    no more: a stage's looks come every minute for hours."""
    env = fake_environment(canary_error_rate=0.0)
    result = canary_on(env, spec(5, 100))
    assert result.outcome == "promoted", result.reason
    reads_at_5 = result.stages[0].ticks
    assert env.router.calls.count("get_weights") <= reads_at_5 + result.stages[1].ticks + 10, env.router.calls


def test_a_weights_read_that_fails_mid_bake_is_made_again_at_the_next_look_not_a_failed_run(caplog):
    """The bake's check of the weights is a read a look: one the load balancer refuses (an outage of
    a minute) must not fail the run, whose hook would roll a healthy canary back."""
    import logging

    from botocore.exceptions import ClientError

    env = fake_environment(canary_error_rate=0.0)
    read, sleep = env.router.get_weights, env.clock.sleep
    refused = {"left": 0}

    def baking(seconds):  # the first sleep at 5 % is the bake's: its next look's read is refused
        sleep(seconds)
        if env.router.weights == Weights.canary_at(5) and refused.setdefault("armed", True) and "done" not in refused:
            refused["left"], refused["done"] = 1, True

    def get_weights():
        if refused["left"]:
            refused["left"] -= 1
            raise ClientError({"Error": {"Code": "AccessDenied", "Message": "not now"}}, "DescribeRules")
        return read()

    env.router.get_weights, env.clock.sleep = get_weights, baking
    with caplog.at_level(logging.WARNING):
        result = canary_on(env, spec(5, 100))
    assert result.outcome == "promoted", result.reason
    assert refused == {"left": 0, "armed": True, "done": True}, refused
    assert any("reading them again at the next look" in r.getMessage() for r in caplog.records)


def test_a_long_bakes_looks_read_the_weights_at_most_once_per_drift_look_seconds():
    """A read a look (one a minute for hours) was a fifth of a stage's orchestration overhead, which
    pushed it past its 1 s goal: the bake's looks read the weights once per ``DRIFT_LOOK_SECONDS``
    of the rollout clock (and again at the next look after a read that failed)."""
    from flows.engine import DRIFT_LOOK_SECONDS

    env = fake_environment(canary_error_rate=0.0)
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=3600, min_bake_seconds=3600),
                                               Stage(weight=100, bake_seconds=600)])
    read, reads = env.router.get_weights, []

    def get_weights():
        reads.append(env.clock.now())
        return read()

    env.router.get_weights = get_weights
    result = canary_on(env, rollout)
    assert result.outcome == "promoted", result.reason
    first = result.stages[0]
    baking = [at for at in reads if first.started_at < at < first.ended_at]
    assert first.ticks >= 50, first  # a look a minute
    assert len(baking) <= 3600 / DRIFT_LOOK_SECONDS + 3, (len(baking), first.ticks)


def claimed_by_another_rollback(monkeypatch) -> list[str]:
    """The canary flow's journal, its rollback's start finding another rollback under way (an
    abort's): the decision of each stage row the run shows, returned."""
    from flows import canary
    from rollway.ledger import RollbackClaimed

    shown: list[str] = []

    class Claimed(canary.StageTables):
        def stage_ended(self, state, report) -> None:
            shown.append(report.decision)
            super().stage_ended(state, report)

        def rolling_back(self, reason: str, actor: str):
            raise RollbackClaimed("the abort's rollback is under way", holder="abort by bob", expires=1e12)

    monkeypatch.setattr(canary, "StageTables", Claimed)
    return shown


@pytest.mark.parametrize("how", ["moved mid-bake", "judge"])
def test_a_run_whose_rollback_another_one_carries_out_shows_no_rollback_row_of_its_own(monkeypatch, how):
    """Another rollback (an abort's) holds the claim: this run stops without moving traffic, and
    its stage row said "rollback" all the same, a second row beside the one that rollback shows."""
    from rollway.ledger import RollbackClaimed

    shown = claimed_by_another_rollback(monkeypatch)
    env = fake_environment(canary_error_rate=0.05 if how == "judge" else 0.0)
    if how == "moved mid-bake":
        env.clock = MovedMidBake(env)
    with pytest.raises(RollbackClaimed):
        canary_on(env, spec(5, 25, 100).model_copy(update={"verify_timeout_seconds": 0.2}))
    assert "rollback" not in shown, shown
    assert env.router.weights == Weights.canary_at(5) if how == "judge" else Weights(stable=50, canary=50)


def test_a_pause_whose_rollback_another_one_carries_out_shows_no_rollback_row_of_its_own(monkeypatch):
    """The canary fails while the run waits for an answer, and another rollback (an abort's) holds
    the claim: the run stops without moving traffic, and its pause's "rollback during the approval
    pause" row was shown all the same, beside the one that rollback shows."""
    from rollway.ledger import RollbackClaimed

    shown = claimed_by_another_rollback(monkeypatch)
    env = fake_environment(canary_error_rate=0.0)
    person = scripted(APPROVE, clock=env.clock, after_seconds=3600)
    with pytest.raises(RollbackClaimed):
        canary_on(env, spec(5, 25, 100, approval_at=(25,)), turns_bad_when_asked(env, person))
    assert shown == ["passed"], shown
    assert env.router.weights == Weights.canary_at(5)
