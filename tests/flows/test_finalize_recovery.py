"""A finalize that stopped early leaves a way forward: after the rollback flow put the previous
version back, a new rollout may start (preflight and finalize agree); and a monitoring window
whose time is up but that no run closed is named as such, with what to run."""

from __future__ import annotations

import time

import pytest
from prefect import flow

from flows.canary import RolloutRefused
from flows.rollback import rollback_recorded
from rollway.finalize import FinalizeIncomplete, FinalizeRefused, finalize_unfinished, plan_finalize
from rollway.ledger import KeptForTraffic, RolloutRecord, Transition, UnverifiedWindow
from rollway.model import ServiceState, Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage, WeeklyPhase
from rollway.targets import Targets
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import (
    ALL_CANARY, ALL_STABLE, failing, finalize_on, finalize_stopped_by, preflight_on, promote_by_hand, rollout_spec,
)


@flow
def rollback_by_hand(env):
    return rollback_recorded(env, "finalize failed; on-call runs the rollback deployment", actor="dave")


def test_after_a_stopped_finalize_and_a_rollback_by_hand_the_next_rollout_may_start(aws):
    env, _, old = promote_by_hand(aws, "start", "promote", "decommission")
    stable_name = aws.targets.stable_service
    restore = failing(aws.get_client("ecs"), "UpdateService", when=lambda p: p.get("service") == stable_name)
    try:
        with pytest.raises(FinalizeIncomplete):
            finalize_on(env)
    finally:
        restore()
    assert read_back(aws)[0] == ALL_CANARY
    assert finalize_unfinished(env.ledger.get(aws.targets.canary_service))

    rollback_by_hand(env)
    weights, stable, _ = read_back(aws)
    assert weights == ALL_STABLE and stable.task_definition == old  # the previous version serves everyone
    # Finalize has nothing left to do and says a new rollout can start; preflight agrees (it used
    # to refuse, sending the person back to finalize).
    with pytest.raises(FinalizeRefused, match="A new rollout can start from here"):
        finalize_on(env)
    preflight_on(env, rollout_spec(f"{aws.topology.repository_uri}:3.0.0"))


def test_a_finalize_stopped_at_its_record_with_the_canary_at_0_still_holds_the_next_rollout(aws):
    """The canary was scaled to 0 and the ledger write of ``finalized`` failed. Preflight let the
    next rollout start, after which finalize refuses that promotion for good: never announced,
    never recorded as finalized. (A notice SNS refuses no longer stops the finalize: see
    test_finalize_notice_refused.py.)"""
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    finalize_stopped_by(env, aws.get_client("dynamodb"), "UpdateItem", "while it tried to record 'finalized'",
                        when=lambda params: '"finalized"' in str(params).replace("'", '"'))
    weights, stable, canary = read_back(aws)
    assert (weights, stable.task_definition, canary.desired) == (ALL_STABLE, release, 0)
    with pytest.raises(RolloutRefused, match="did not finish: run `rollway finalize` .* again to tell people and record"):
        preflight_on(env, rollout_spec(f"{aws.topology.repository_uri}:3.0.0"))

    assert finalize_on(env).outcome == "finalized"
    assert not finalize_unfinished(env.ledger.get(aws.targets.canary_service))
    preflight_on(env, rollout_spec(f"{aws.topology.repository_uri}:3.0.0"))


def _promoted(promoted_at: float, **analysis) -> RolloutRecord:
    """A rollout promoted at ``promoted_at`` whose one-hour monitoring window no run has closed
    (``analysis``: its spec's analysis settings, the defaults' otherwise)."""
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=5), Stage(weight=100)], monitor_seconds=3600,
                       phases=[WeeklyPhase(name="all", weights=(5, 100), decommission=True)],
                       **({"analysis": analysis} if analysis else {}))
    return RolloutRecord(service="svc", rollout_id="20260101T000000Z-00000000", image=spec.image,
                         spec_json=spec.model_dump_json(), phase=RolloutPhase.PROMOTED,
                         weights=Weights(stable=0, canary=100), canary_task_definition="app:2", stable_desired=2,
                         monitor_until=promoted_at + 3600,
                         history=(Transition(at=promoted_at, kind="promote", actor="run"),))


def _finalize_refusal(record: RolloutRecord, now: float, wall: float | None = None) -> str:
    state = lambda td, n: ServiceState(name="svc", task_definition=td, desired=n, running=n)  # noqa: E731
    with pytest.raises(FinalizeRefused) as refused:
        plan_finalize(record, RolloutSpec.for_rollback(record.spec_json), live=Weights(stable=0, canary=100),
                      stable=state("app:1", 2), canary=state("app:2", 2), targets=Targets(), now=now, wall=wall)
    return " ".join(str(refused.value).split())


def test_a_window_whose_time_is_up_but_that_no_run_closed_says_what_to_run():
    now = time.time()
    record = _promoted(now - 3 * 3600)  # promoted three hours ago, one-hour window
    message = _finalize_refusal(record, now)
    assert "still open" not in message and "no run closed it" in message
    assert "Run `progressive_rollout` of repo/app:2.0.0 again" in message
    # Within the window it is still open, and waiting is the advice.
    assert "still open" in _finalize_refusal(record, now - 3 * 3600 + 60)


def test_a_window_in_its_final_wait_is_closing_not_abandoned():
    """The watching run's last look comes a publication delay after the window's end. A finalize
    in that minute said "no run closed it: the run watching it stopped" and sent the person to run
    the whole rollout again, while the run was about to close the window itself."""
    promoted_at = time.time() - 3600 - 30  # the window ended 30 s ago (delay 60 s, interval 60 s)
    message = _finalize_refusal(_promoted(promoted_at), promoted_at + 3600 + 30)
    assert "no run closed it" not in message and "progressive_rollout" not in message
    assert "judges the window's last period" in message and "run finalize again after" in message
    # Once the last look and its record are overdue, the window is named as abandoned: the last
    # look waits for the end of the period the window ends in (up to 60 s after it), then 60 s.
    assert "no run closed it" in _finalize_refusal(_promoted(promoted_at), promoted_at + 3600 + 180)


def test_a_window_in_its_final_wait_says_the_metrics_delay_as_given():
    """``:g`` said a metrics_delay_seconds of 150.0625 "150.062", a figure nobody gave."""
    promoted_at = time.time() - 3600 - 30
    message = _finalize_refusal(_promoted(promoted_at, metrics_delay_seconds=150.0625), promoted_at + 3600 + 30)
    assert "judges the window's last period once CloudWatch has published it (about 150.0625 s late)" in message, message


@pytest.mark.parametrize(("recorded", "said"), [
    ({"unverified_window": UnverifiedWindow(at=0, actor="run-7", counted=3, looks=29, failed=2)},
     "unverified: 3 of 29 looks counted requests to the new version (2 could not read the metrics; run-7's run"),
    ({"kept_for_traffic": KeptForTraffic(at=0, actor="run-7", stable=20)},
     "passed cleanly, but the old service still carried 20% of traffic (put back on it by hand) when run-7's run"),
])
def test_a_window_its_run_recorded_as_left_open_is_refused_with_why_not_a_guess(recorded, said):
    """The run that watched the window to its end recorded why it left it open (unverified, or kept
    for traffic put back by hand): status said so, and finalize still guessed "the run watching it
    stopped, or too few of its checks counted requests"."""
    now = time.time()
    promoted_at = now - 3 * 3600
    ended = {key: value.model_copy(update={"at": promoted_at + 3600 + 60}) for key, value in recorded.items()}
    message = _finalize_refusal(_promoted(promoted_at).model_copy(update=ended), now)
    assert said in message, message
    assert "the run watching it stopped, or too few" not in message, message
    assert "Run `progressive_rollout` of repo/app:2.0.0 again" in message and "Nothing was changed" in message


@pytest.mark.parametrize("when", [-1800.0, 30.0], ids=["in-the-window", "in-its-final-wait"])
@pytest.mark.parametrize(("owner", "lease_left", "watched"), [
    ("run-7", 300.0, True),  # its run holds a live lease: it watches, and closes the window
    ("run-7", -300.0, False),  # its run's lease lapsed: it stopped or died (killed, its host gone)
    (None, 0.0, False),  # no run holds it (one that stopped early gave it back)
])
def test_a_window_no_run_watches_is_refused_with_what_closes_it_not_a_wait(when, owner, lease_left, watched):
    """Inside a window whose watching run had been killed (its lease lapsed) or gave its lease back,
    finalize said "run finalize again once the window has passed" (or after its last period's look):
    waiting closes no window nobody watches, and the refusal came back past its end. It says, as
    status does, that no run watches it and what does; while a run holds the lease, to wait."""
    from rollway.ledger import wall_utc

    promoted_at, wall = time.time() - 3600, 1_900_000_000.0
    record = _promoted(promoted_at).model_copy(update={"owner": owner, "lease_expires": wall + lease_left})
    message = _finalize_refusal(record, promoted_at + 3600 + when, wall=wall)
    assert "Nothing was changed" in message, message
    waits = "once the window has passed" if when < 0 else "run finalize again after"
    assert (waits in message) is watched, message
    assert ("Run `progressive_rollout` of repo/app:2.0.0 again" in message) is not watched, message
    if not watched:
        why = (f"run-7's lease lapsed at {wall_utc(wall + lease_left)}: its run stopped or died" if owner else
               "no run holds the rollout's lease")
        # Past its end, no run makes its last look: it is said not closed, as once that look is due.
        assert (f"the ledger shows no run watching it now ({why}): waiting does not close it" if when < 0 else
                f"but no run closed it, and none recorded watching it to its end ({why})") in message, message
    # Not told the wall clock, it cannot tell: the wait, as before.
    assert waits in _finalize_refusal(record, promoted_at + 3600 + when), message


def test_a_window_past_its_end_that_no_run_recorded_an_end_of_is_refused_without_a_guess():
    """Finalize guessed "the run watching it stopped, or too few of its checks counted requests to
    the new version or could read the metrics" of a window no run recorded an end of: a run that
    counted too few records its unverified end (quoted instead). It says what the record holds:
    that no run recorded watching it to its end, and, told the wall clock, who last held its lease."""
    from rollway.ledger import wall_utc

    now, wall = time.time(), 1_900_000_000.0
    record = _promoted(now - 3 * 3600).model_copy(update={"owner": "run-7", "lease_expires": wall - 300})
    message = _finalize_refusal(record, now, wall=wall)
    assert "too few" not in message and "could read the metrics" not in message, message
    assert ("but no run closed it, and none recorded watching it to its end (run-7's lease lapsed at "
            f"{wall_utc(wall - 300)}: its run stopped or died). Run `progressive_rollout` of repo/app:2.0.0 again"
            in message), message


ARN = "arn:aws:ecs:us-west-2:123456789012:task-definition/"


@pytest.mark.parametrize(("live", "stable_td", "action"), [
    (Weights(stable=0, canary=100), f"{ARN}app:1", "start"),  # nothing moved yet
    (Weights(stable=100, canary=0), f"{ARN}app:2", "after-traffic"),  # a finalize moved the traffic and stopped
])
def test_a_promoted_revision_recorded_as_family_revision_is_the_same_one_ecs_names_by_arn(live, stable_td, action):
    """The ledger may name the promoted revision "family:revision" while ECS answers with its full
    ARN. Finalize compared the two with ``==``: a finalize that had moved the traffic and stopped
    was refused as "someone moved the traffic back by hand" (the next one could never finish it),
    and an untouched promotion as "changed after the promotion", though both run that revision."""
    record = _promoted(time.time() - 3 * 3600)
    record = record.model_copy(update={"history": (*record.history, Transition(at=record.history[-1].at + 3700,
                                                                               kind="decommission", actor="run"),
                                                   *((Transition(at=record.history[-1].at + 3800, kind="finalize-start",
                                                                 actor="alice"),) if action != "start" else ()))})
    state = lambda td, n: ServiceState(name="svc", task_definition=td, desired=n, running=n)  # noqa: E731
    plan = plan_finalize(record, RolloutSpec.for_rollback(record.spec_json), live=live, stable=state(stable_td, 2),
                         canary=state(f"{ARN}app:2", 2), targets=Targets(), now=time.time())
    assert (plan.action, plan.task_definition.rsplit("/", 1)[-1]) == (action, "app:2"), plan
