"""Two rollbacks of one rollout at once: `rollway abort` and the cancelled run's hook.

Both start from the phase rolling_back (the abort records its intent before it stops the run),
which stays open so that a rollback that died midway can be finished. They used to both move
the traffic and both page people. Now one holds the rollback's claim; the other waits for it to
end and reports what it did, paging nobody; a claim whose holder died (its lease lapsed) is
taken over and the rollback finished.
"""
from __future__ import annotations

import logging
import time
from uuid import uuid4

import pytest

import rollway.cli.ops as ops
from flows.progressive import progressive_rollout
from flows.rollback import RollbackIncomplete, rollback
from rollway.aws.errors import TargetNotFound
from rollway.fakes import FakeLedger
from rollway.ledger import RollbackClaimed, RolloutRecord, Transition, begin_rollback, new_rollout_id, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import incident_report
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment, pages
from tests.flows.test_refusals import hooks_and_flows_see

SPEC = RolloutSpec(image="webordinary/edit-container:2.0.0", stages=[Stage(weight=w, bake_seconds=600) for w in (5, 100)])
HOOK = "state hook (cancelled) (flow run brave-otter, 0d6e...)"
SERVICE_TD = "arn:aws:ecs:us-west-2:123456789012:task-definition/webordinary-edit-task:2"


class OtherRollback:
    """Another rollback, in another process, carrying out the rollout's rollback: it moves the
    traffic back, pages once and records its end (with its message id) when ``finish`` is called."""

    def __init__(self, env, holder: str) -> None:
        self.env, self.holder = env, holder

    def finish(self, ledger, service, rollout) -> None:
        env = self.env
        env.router.set_weights(Weights(stable=100, canary=0))
        env.deployer.update_service(env.targets.canary_service, task_definition=STABLE_TD, desired=0)
        message_id = env.notifier.notify(f"Rollback: {service}", f"rolled back by {self.holder}")
        now = env.clock.now()
        FakeLedger.record(ledger, service, owner=None, now=now, rollout=rollout,
                          transition=Transition(at=now, kind="rollback", actor=self.holder.split(" (")[0],
                                                comment="run cancelled", to_weights=Weights(stable=100, canary=0),
                                                message_id=message_id, task_definition=STABLE_TD),
                          phase=RolloutPhase.ROLLED_BACK, weights=Weights(stable=100, canary=0), rollback_holder=None)


class FinishesWhileWatched(FakeLedger):
    """The other rollback ends while this one waits: after this one was refused the claim and
    has looked at the live claim ``after`` times."""

    def __init__(self, after: int = 2) -> None:
        super().__init__()
        self.other: OtherRollback | None = None
        self.after, self.looks, self.refused = after, 0, False

    def claim_rollback(self, service, **kwargs):
        try:
            return super().claim_rollback(service, **kwargs)
        except RollbackClaimed:
            self.refused = True
            raise

    def record(self, service, **kwargs):
        try:
            return super().record(service, **kwargs)
        except RollbackClaimed:
            self.refused = True
            raise

    def get(self, service):
        got = super().get(service)
        if self.refused and got is not None and got.rollback_holder == self.other.holder:
            self.looks += 1
            if self.looks == self.after:
                self.other.finish(self, service, got.rollout_id)
                got = super().get(service)
        return got


def rolling_back(monkeypatch, ledger, *, holder: str | None, expires_in: float, spec: RolloutSpec = SPEC):
    """A rollout at 5% whose rollback has begun, its claim held by ``holder`` for ``expires_in`` more seconds."""
    env = fake_environment()
    env.ledger = ledger
    now = env.clock.now()
    first = RolloutRecord(service=env.targets.canary_service, rollout_id=new_rollout_id(now - 100), image=spec.image,
                          spec_json=spec.model_dump_json(), phase=RolloutPhase.PROGRESSING, stage_index=0,
                          weights=Weights.canary_at(5), previous_task_definition=STABLE_TD, stable_desired=4)
    ledger.create(first, owner="process/old", now=now - 100, lease_seconds=0)
    begin_rollback(ledger, env.targets.canary_service, actor="erin", reason="aborted by erin: errors", now=now - 5,
                   rollout=first.rollout_id)  # `rollway abort`'s intent: no claim
    if holder is not None:
        FakeLedger.record(ledger, env.targets.canary_service, owner=None, now=now - 4,
                          transition=Transition(at=now - 4, kind="rollback-start", actor="hook", comment="cancelled"),
                          rollback_holder=holder, rollback_expires=now + expires_in)
    env.router.weights = Weights.canary_at(5)
    env.deployer.services[env.targets.canary_service] = env.deployer.services[env.targets.canary_service].model_copy(
        update={"task_definition": SERVICE_TD, "desired": 2, "running": 2})
    hooks_and_flows_see(monkeypatch, env)
    return env, first


def abort_while_the_hook_rolls_back(monkeypatch, capsys, other=OtherRollback):
    """`rollway abort` while the hook's rollback (``other``) holds the claim and ends a few looks
    later. Returns (env, exit code, stdout, stderr), each output on one line."""
    ledger = FinishesWhileWatched()
    env, first = rolling_back(monkeypatch, ledger, holder=HOOK, expires_in=60)
    ledger.other = other(env, HOOK)
    service = ops.Service(targets=env.targets, targets_block=f"claim-{uuid4().hex[:8]}", credentials_block=None,
                          ledger=env.ledger, router=env.router)
    monkeypatch.setattr(ops, "connect", lambda *a: service)

    code = ops.abort(approver="erin", reason="errors", flow_run=None, wait_seconds=0,
                     targets_block=service.targets_block, credentials_block=None)

    out, err = capsys.readouterr()
    return env, code, " ".join(out.split()), " ".join(err.split())


def test_abort_waits_for_the_hooks_rollback_and_reports_it_without_paging_again(monkeypatch, capsys):
    env, code, out, _ = abort_while_the_hook_rolls_back(monkeypatch, capsys)

    assert len(pages(env)) == 1, env.notifier.messages  # the hook's page only
    assert env.router.calls.count("set_weights 100/0") == 1, "the abort moved the traffic too"
    assert code == 0
    assert f"by {HOOK} while this command waited" in out and "SNS message msg-1" in out, out
    assert "load balancer now 100/0 (stable/canary), read back" in out, out
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.history[-1].actor == "state hook"


class ShiftLandsAfter(OtherRollback):
    """The hook's rollback ends (100/0 recorded and paged), then a shift sent before it lands."""

    def finish(self, ledger, service, rollout) -> None:
        super().finish(ledger, service, rollout)
        self.env.router.weights = Weights.canary_at(5)


def test_an_abort_that_reports_the_hooks_rollback_says_where_the_traffic_is_now(monkeypatch, capsys):
    """It printed the weights the hook's rollback recorded, 100/0, and exited 0 while the load
    balancer sent 5% to the canary: it never read the load balancer."""
    env, code, out, err = abort_while_the_hook_rolls_back(monkeypatch, capsys, ShiftLandsAfter)

    assert "load balancer now 95/5 (stable/canary), read back" in out, out
    assert code == 1
    assert f"sends 5% of the traffic to {env.targets.canary_service}" in err and "rollback flow" in err, err
    assert len(pages(env)) == 1, env.notifier.messages


class AbortClaimsFirst(FinishesWhileWatched):
    """As the failed run's hook records its rollback's start, the abort's rollback flow has just
    taken the claim (it ends a few looks later)."""

    def record(self, service, *, transition, **kwargs):
        if transition.kind == "rollback-start" and transition.actor.startswith("state hook") and not self.refused:
            begin_rollback(self, service, actor="erin", reason="aborted by erin", now=transition.at,
                           holder=self.other.holder)
        return super().record(service, transition=transition, **kwargs)


def test_a_failed_runs_hook_waits_for_the_aborts_rollback_and_pages_nobody(monkeypatch, caplog):
    env = fake_environment()
    env.ledger = AbortClaimsFirst()
    env.ledger.other = OtherRollback(env, "erin (flow run calm-heron, 7f1c...)")
    hooks_and_flows_see(monkeypatch, env)
    real_update = env.deployer.update_service

    def canary_cannot_scale(service, *, task_definition=None, desired=None):
        if service == env.targets.canary_service and desired and task_definition is None:
            raise RuntimeError("UpdateService throttled")
        return real_update(service, task_definition=task_definition, desired=desired)

    env.deployer.update_service = canary_cannot_scale
    with caplog.at_level(logging.INFO), pytest.raises(RuntimeError, match="throttled"):
        progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)
    assert len(pages(env)) == 1, env.notifier.messages  # the abort's page only
    assert env.router.calls.count("set_weights 100/0") == 1, "the hook moved the traffic too"
    said = [r.getMessage() for r in caplog.records]
    assert any("not rolling back after run" in m and "rolled back by erin" in m for m in said), said
    assert any("waiting up to" in m for m in said), said  # it showed that it waited, and for whom
    assert env.ledger.get(env.targets.canary_service).history[-1].message_id == "msg-2"  # after "Rollout starting"


def test_a_claim_whose_holder_died_is_taken_over_and_the_rollback_finished(monkeypatch):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder="erin (process 4242 on laptop)",
                              expires_in=-1)

    result = rollback(reason="finish the abort that died")

    assert result.done_by is None and env.router.weights == Weights(stable=100, canary=0)
    assert len(pages(env)) == 1
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.rollback_holder is None
    end = record.history[-1]
    # The rollback's entry keeps what it sent and what it restored (the incident report reads them).
    assert (end.kind, end.message_id, end.task_definition) == ("rollback", "msg-1", STABLE_TD)
    # ... and the history says this rollback took the dead one's over, on the rollout clock (the reports read it).
    taken = record.last_transition("takeover")  # before the notice's record and the end
    assert [t.kind for t in record.history[-4:]] == ["takeover", "notifying", "notified", "rollback"], record.history
    assert taken.actor.split(" (")[0] == "operator", record.history
    assert taken.comment.startswith("took the rollback over from erin (process 4242 on laptop), whose claim lapsed")
    assert taken.at <= end.at
    moved_back = incident_report(record).split("## Traffic moved back")[1].split("## Rollback steps")[0]
    assert "took the rollback over from erin (process 4242 on laptop), whose claim lapsed" in moved_back, moved_back
    assert "Runs that took the rollout over" not in incident_report(record)  # the rollout's lease changed no hands


def test_a_live_claim_is_waited_for_only_so_long_and_nothing_moves(monkeypatch, caplog):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=HOOK, expires_in=3600)

    with caplog.at_level(logging.INFO), pytest.raises(RollbackClaimed, match="still under way after 900 s"):
        rollback(reason="abort again")

    assert pages(env) == [] and env.router.weights == Weights.canary_at(5)
    assert env.router.calls.count("set_weights 100/0") == 0
    progress = [r.getMessage() for r in caplog.records
                if r.getMessage().startswith(f"rollback by {HOOK} still under way")]
    assert len(progress) >= 10, progress  # a line per look while it waits
    # The claim is on the wall clock, the run's other times on the rollout clock (hours apart under `rollway up`).
    expires = env.ledger.get(env.targets.canary_service).rollback_expires
    assert all(f"its claim renewed until {utc(expires)} (wall clock); waited" in line for line in progress), progress
    assert env.ledger.get(env.targets.canary_service).rollback_holder == HOOK


def test_a_rollback_that_fails_a_step_gives_its_claim_up_for_the_next_one(monkeypatch):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)

    def topic_gone(subject, message):
        raise TargetNotFound("SNS topic", "webordinary-alerts", "in region us-west-2")

    env.notifier.notify = topic_gone
    with pytest.raises(RollbackIncomplete, match="could not: notify .*webordinary-alerts"):
        rollback(reason="abort")
    assert env.router.weights == Weights(stable=100, canary=0)  # it acted ...
    record = env.ledger.get(env.targets.canary_service)
    # ... and stays open, its claim given up: the next rollback finishes it without waiting.
    assert record.phase is RolloutPhase.ROLLING_BACK and record.rollback_holder is None
    assert sum(c.startswith("claim_rollback") for c in env.ledger.calls) == 2, env.ledger.calls  # taken, given up


def test_on_the_embedded_aws_a_lapsed_claim_is_taken_over_and_the_end_recorded(aws):
    """The same on DynamoDB and SNS (moto), through the blocks a person's rollback flow loads."""
    from rollway.aws.environment import aws_environment
    from rollway.aws.ledger import DynamoLedger
    from rollway.clock import ClockSettings
    from tests.flows.moto_env import saved_blocks
    from tests.flows.test_reports_flow import start_at_five_percent

    blocks = saved_blocks(aws, "claim")
    record, _ = start_at_five_percent(aws)
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    router = aws_environment(aws.get_client, aws.targets, ClockSettings().build()).router
    service = aws.targets.canary_service
    # erin's abort took the claim 61 s ago and its process died: nothing renewed it.
    begin_rollback(ledger, service, actor="erin", reason="aborted by erin: errors", now=time.time() - 61,
                   rollout=record.rollout_id, holder="erin (process 4242 on laptop)", lease_seconds=60)

    done = rollback(reason="finish erin's abort", actor="carol", targets_block=blocks, aws_credentials_block=blocks)

    assert done.done_by is None and router.get_weights() == Weights(stable=100, canary=0)
    stored = ledger.get(service)
    end = stored.history[-1]
    assert stored.phase is RolloutPhase.ROLLED_BACK and stored.rollback_holder is None
    assert done.notification_id  # SNS's id for the one notice ...
    assert (end.kind, end.actor, end.message_id, end.task_definition) == (  # ... kept with the rollback's end
        "rollback", "carol", done.notification_id, done.canary_task_definition)
    taken = stored.last_transition("takeover")  # ... after the takeover of erin's lapsed claim and the notice
    assert [t.kind for t in stored.history[-4:]] == ["takeover", "notifying", "notified", "rollback"], stored.history
    assert taken.actor.split(" (")[0] == "carol", stored.history
    assert "took the rollback over from erin (process 4242 on laptop)" in taken.comment


CAROL = "carol (flow run quick-lynx, 5e2a...)"


def test_a_rollback_whose_claim_is_taken_over_stops_before_its_next_step_and_pages_nobody(monkeypatch, caplog):
    """Its renewals stalled (a long wait on the stable service, a DynamoDB outage), the claim
    lapsed and carol's rollback took it over. This one used to carry on, restoring and paging as
    well; now it stops before its next step, says what it did and who holds the claim, and
    carol's rollback finishes the work and sends the one page."""
    from flows.rollback import RollbackClaimLost

    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    service = env.targets.canary_service
    real_set = env.router.set_weights

    def set_then_lose_the_claim(weights):
        held = real_set(weights)
        # Long after this rollback's last renewal: its claim lapsed, and carol's rollback took it.
        env.ledger.claim_rollback(service, holder=CAROL, now=env.clock.now() + 3600, lease_seconds=3660,
                                  rollout=first.rollout_id)
        return held

    env.router.set_weights = set_then_lose_the_claim
    with caplog.at_level(logging.INFO), pytest.raises(RollbackClaimLost) as lost:
        rollback(reason="abort")

    assert pages(env) == [], "a rollback that lost its claim paged people"
    canary = env.deployer.services[service]
    assert (canary.task_definition, canary.desired) == (SERVICE_TD, 2), "it went on to retire the canary"
    assert lost.value.holder == CAROL and lost.value.steps == ("weights 100/0 verified",)
    assert CAROL in str(lost.value) and "weights 100/0 verified" in str(lost.value)
    assert any("no longer holds its claim" in r.getMessage() for r in caplog.records)
    record = env.ledger.get(service)
    # Still carol's to finish: nothing recorded as ended, her claim untouched (not "given up").
    assert record.phase is RolloutPhase.ROLLING_BACK and record.rollback_holder == CAROL

    OtherRollback(env, CAROL).finish(env.ledger, service, first.rollout_id)
    assert len(pages(env)) == 1  # carol's page: the one people get


def test_a_judges_rollback_that_loses_its_claim_stops_and_its_hook_waits_for_the_holder(monkeypatch):
    """The same for the judge's own rollback (the journal holds its claim): the run stops with
    RollbackClaimLost, and its hook waits for carol's rollback instead of rolling back again:
    people get carol's page only."""
    from flows.rollback import RollbackClaimLost
    from rollway.ledger import CLAIM_SECONDS

    env = fake_environment(canary_error_rate=0.3)
    env.ledger = FinishesWhileWatched()
    env.ledger.other = OtherRollback(env, CAROL)
    hooks_and_flows_see(monkeypatch, env)
    service = env.targets.canary_service
    real_set = env.router.set_weights
    taken: list[bool] = []

    def back_then_lose_the_claim(weights):
        held = real_set(weights)
        if weights == Weights(stable=100, canary=0) and not taken:
            taken.append(True)
            env.clock.sleep(3600)  # the judge's rollback stalled: its claim lapsed, carol's took it
            env.ledger.claim_rollback(service, holder=CAROL, now=env.wall(), lease_seconds=CLAIM_SECONDS)
        return held

    env.router.set_weights = back_then_lose_the_claim
    with pytest.raises(RollbackClaimLost, match="carol"):
        progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)

    assert taken, "the judge never rolled back"
    rollbacks = [s for s, _ in env.notifier.messages if s.startswith("Rollback")]
    assert len(rollbacks) == 1, env.notifier.messages  # carol's, sent while the hook waited
    record = env.ledger.get(service)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.history[-1].actor == "carol"
    assert [t.kind for t in record.history].count("rollback") == 1


def test_a_resumed_rollout_whose_rollback_another_run_finishes_says_so(monkeypatch, caplog):
    """A progressive run of the image whose rollback the hook is carrying out waits for it and
    reports its end. It used to log "finishing the rollback of rollout ... that was interrupted"
    and return that as its reason, while the hook's run did all of it and was never interrupted."""
    ledger = FinishesWhileWatched()
    env, first = rolling_back(monkeypatch, ledger, holder=HOOK, expires_in=60)
    ledger.other = OtherRollback(env, HOOK)

    with caplog.at_level(logging.INFO):
        result = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)

    assert result.outcome == "rolled_back"
    assert result.rollback.done_by == HOOK
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "interrupted" not in said and "interrupted" not in result.reason, (said, result.reason)
    assert f"finished by {HOOK}" in result.reason and first.rollout_id in result.reason, result.reason
    assert result.reason in said, said
    assert len(pages(env)) == 1  # the hook's


class FinishedJustBeforeTheClaim(FakeLedger):
    """Another rollback ends the rollout's rollback between this run's read and its claim."""

    other: OtherRollback | None = None

    def claim_rollback(self, service, **kwargs):
        record = super().get(service)
        if record.phase is RolloutPhase.ROLLING_BACK and self.other is not None:
            self.other.finish(self, service, record.rollout_id)
            self.other = None
        return super().claim_rollback(service, **kwargs)


def test_a_resumed_rollout_whose_rollback_ended_a_moment_before_its_claim_has_nothing_left_to_do(
        monkeypatch, caplog):
    """It used to fail the run on the ledger's RolloutClosed after logging that it finished an
    interrupted rollback; now it says the rollback was just finished, by whom, and that nothing
    was left to do."""
    ledger = FinishedJustBeforeTheClaim()
    env, first = rolling_back(monkeypatch, ledger, holder=None, expires_in=0.0)
    ledger.other = OtherRollback(env, "erin (process 4242 on laptop)")

    with caplog.at_level(logging.INFO):
        result = progressive_rollout(spec=SPEC.model_dump(mode="json"), phased=False)

    assert result.outcome == "rolled_back" and result.rollback is None
    said = " ".join(r.getMessage() for r in caplog.records)
    assert "interrupted" not in said, said
    assert "finished by erin" in result.reason and "nothing left to do" in result.reason, result.reason
    assert result.reason in said, said
    assert result.final_weights == Weights(stable=100, canary=0)
    assert len(pages(env)) == 1 and env.router.calls.count("set_weights 100/0") == 1  # erin's only


def test_a_rollback_move_not_read_back_says_what_was_read_when_and_after_how_long(monkeypatch):
    """Its error, in the page and the run's failure, said "load balancer holds weights 95/5
    (stable/canary), expected 100/0": in the present tense, beside the page's own read of the
    weights (which may show the move landed since), and without the wait that ran out."""
    import flows.rollback

    monkeypatch.setattr(flows.rollback, "DEFAULT_VERIFY_SECONDS", 0.2)
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0,
                              spec=SPEC.model_copy(update={"verify_timeout_seconds": 0.2}))
    env.router.lag = 10_000  # the load balancer shows the old rule for a long while after the write

    with pytest.raises(Exception) as failed:
        rollback(reason="abort")

    said = ("the load balancer held weights 95/5 (stable/canary), not the 100/0 set, when the read-back ended after "
            "under a second (verify_timeout_seconds)")
    assert said in str(failed.value), failed.value
    (page,) = [m for s, m in env.notifier.messages if s.startswith("Rollback FAILED")]
    assert said in page, page
    # Not "once webordinary-edit-service can take the traffic": the stable service was never the trouble.
    assert "can take the traffic" not in page and "the load balancer may only be slow to show the move" in page, page


def test_a_rollback_that_finds_no_healthy_stable_targets_names_the_setting_of_its_wait(monkeypatch):
    """Its refusal, in the page and the run's failure, said "no healthy targets after 300 s", naming
    neither what sets the wait (the rollout's own spec, never below the default) nor what to do;
    finalize's names both."""
    import flows.rollback

    monkeypatch.setattr(flows.rollback, "DEFAULT_HEALTHY_SECONDS", 0.2)
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0,
                              spec=SPEC.model_copy(update={"healthy_timeout_seconds": 0.1}))
    env.router.healthy["stable"] = 0

    with pytest.raises(Exception) as failed:
        rollback(reason="abort")

    said = ("the stable target group has no healthy targets after 0.2 s (the rollout spec's healthy_timeout_seconds or "
            "the rollback flow's (a rollback waits it, and 300 s at least)); refusing to send traffic to it: see why its targets fail the load balancer's health "
            "checks")
    assert said in str(failed.value), failed.value
    (page,) = [m for s, m in env.notifier.messages if s.startswith("Rollback FAILED")]
    assert said in page, page


def test_the_rollback_flow_by_hand_whose_rollout_another_rollback_just_closed_refuses_in_one_line(
        monkeypatch, caplog):
    """The rollback flow run by hand read the rollout rolling back, and another rollback ended it
    before this one's claim: the ledger refuses it (RolloutClosed) with nothing changed, and its
    run's log gave that refusal under a traceback, as if the rollback had crashed."""
    from rollway.ledger import RolloutClosed

    ledger = FinishedJustBeforeTheClaim()
    env, first = rolling_back(monkeypatch, ledger, holder=None, expires_in=0.0)
    ledger.other = OtherRollback(env, "erin (process 4242 on laptop)")

    with caplog.at_level(logging.INFO):
        state = rollback(reason="5xx on the canary", actor="sam", return_state=True)

    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, RolloutClosed), refused
    said = str(refused)
    assert f"rollout {first.rollout_id!r}" in said and "already rolled back by erin" in said, said
    assert "neither moves the traffic again nor pages anyone" in said, said
    assert len(pages(env)) == 1 and env.router.calls.count("set_weights 100/0") == 1  # erin's only
    assert any(said in r.getMessage() for r in caplog.records), caplog.text
    traced = [r for r in caplog.records if isinstance((r.exc_info or (None, None))[1], RolloutClosed)]
    assert traced == [], [r.getMessage() for r in traced]


def test_the_rollback_flow_by_hand_that_gives_up_waiting_for_a_claim_says_who_since_when_and_what_next(
        monkeypatch, caplog):
    """A person ran the rollback flow while the cancelled run's hook held the claim and went on
    renewing it: after the wait, the run's log gave the refusal under a Python traceback, as if the
    rollback had crashed, and the refusal said neither since when that rollback had been under way
    nor what to run if it never ends."""
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=HOOK, expires_in=3600)

    with caplog.at_level(logging.INFO):
        state = rollback(reason="abort again", actor="sam", claim_wait_seconds=60, return_state=True)

    refused = state.result(raise_on_failure=False)
    assert isinstance(refused, RollbackClaimed), refused
    said = str(refused)
    assert f"being rolled back by {HOOK}" in said, said
    begun = env.ledger.get(env.targets.canary_service).history
    start = next(t for t in begun if t.kind == "rollback-start")
    assert f"under way since {utc(start.at)} (begun by erin: aborted by erin: errors)" in said, said
    assert "`rollway status`" in said and "`rollway abort`" in said, said
    assert env.router.calls.count("set_weights 100/0") == 0 and pages(env) == []
    traced = [r for r in caplog.records if isinstance((r.exc_info or (None, None))[1], RollbackClaimed)]
    assert traced == [], [r.getMessage() for r in traced]
