"""The canary is judged while a shift waits for its tasks: it serves the passed stage's share meanwhile."""

from __future__ import annotations

import logging
import re

import pytest
from prefect import flow

from flows.canary import run_canary
from flows.engine import FailedWhileScaling, wait_healthy
from rollway.approvals import ApprovalAnswer, scripted
from rollway.fakes import steady
from rollway.model import Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"
SCALE_UP_SECONDS = 600.0  # the spec's default scale_timeout_seconds, used up by the scale-up for 50 %


def spec(*weights: int) -> RolloutSpec:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in weights])


@flow
def canary_on(env, rollout: RolloutSpec):
    return run_canary(env, rollout, scripted())


def slow_scale_up(env, *, breaks_at: int | None = None) -> list[Weights]:
    """ECS takes ten minutes (40 polls of 15 s on the rollout clock) to start each scale-up's tasks;
    once the canary is scaled to ``breaks_at`` tasks, it serves 5 % errors. Returns the weights set."""
    env.deployer.clock, env.deployer.poll_seconds, env.deployer.polls = env.clock, 15.0, int(SCALE_UP_SECONDS / 15)
    update, written, write = env.deployer.update_service, [], env.router.set_weights

    def update_service(service, *, task_definition=None, desired=None):
        if breaks_at is not None and service == env.targets.canary_service and desired == breaks_at:
            env.metrics.behaviour = steady(5000.0, 0.001, 0.05)  # a leak that shows under the new tasks' start
        return update(service, task_definition=task_definition, desired=desired)

    def set_weights(weights):
        written.append(weights)
        return write(weights)

    env.deployer.update_service, env.router.set_weights = update_service, set_weights
    return written


def test_a_canary_failing_while_it_scales_for_the_next_stage_is_rolled_back_before_the_shift(caplog):
    """The 5 % stage passed; the canary breaks while ECS starts the two tasks for 50 %. It is rolled
    back within a look of it, from 5 %: the 50 % weights are never set, and the ten-minute wait ends early."""
    env = fake_environment(canary_error_rate=0.0)
    written = slow_scale_up(env, breaks_at=2)
    with caplog.at_level(logging.INFO):
        result = canary_on(env, spec(5, 50, 100))
    assert result.outcome == "rolled_back", result.reason
    assert all(w.canary < 50 for w in written), written
    assert env.router.weights == Weights(stable=100, canary=0)
    assert result.reason.startswith("5%: ") and "judged while the canary scaled for 50%, before the shift" in result.reason
    assert [(s.weights.canary, s.decision) for s in result.stages] == [(5, "passed"), (5, "rollback while scaling for 50%")]
    watched = result.stages[1]
    assert watched.canary.errors > 0
    # Rolled back at the first looks of the wait, not at its end (ten minutes) nor at 50 %'s first look.
    assert watched.ended_at - watched.started_at <= 3 * 60, (watched.started_at, watched.ended_at)
    said = [r.getMessage() for r in caplog.records]
    assert any("at 5%, watching the canary while it scales for 50%: the canary failed the judge: 5%: " in m
               and "the shift to 50% is not made" in m for m in said), said
    assert not any("waiting for an answer" in m for m in said)
    assert env.notifier.messages[-1][0].startswith("Rollback") and result.reason in env.notifier.messages[-1][1]


def test_a_healthy_canary_is_watched_while_it_scales_and_promoted_as_before(caplog):
    """The watch looks once per analysis interval of the wait (one metrics read per look), and says so."""
    env = fake_environment(canary_error_rate=0.0)
    written = slow_scale_up(env)
    with caplog.at_level(logging.INFO):
        result = canary_on(env, spec(5, 50, 100))
    assert result.outcome == "promoted", result.reason
    assert [w.canary for w in written] == [5, 50, 100]
    assert [(s.weights.canary, s.decision) for s in result.stages] == [(5, "passed"), (50, "passed"), (100, "passed")]
    looks = [r.getMessage() for r in caplog.records if "watching the canary while it scales" in r.getMessage()]
    # 50 % and 100 % each wait ten minutes with traffic on the canary: about a look a minute (60 s interval).
    assert 2 * 8 <= len(looks) <= 2 * 10, looks
    assert all("the scale-up goes on" in m for m in looks)
    # No more than one metrics read per look: the wait's reads are as many as its looks (the next
    # stage's hour before it and first look are read as the wait ends).
    passed_5, passed_50 = result.stages[0].ended_at, result.stages[1].ended_at
    during = [w for w in env.metrics.windows
              if passed_5 < w[1] < passed_5 + SCALE_UP_SECONDS or passed_50 < w[1] < passed_50 + SCALE_UP_SECONDS]
    assert len(during) == len(looks), (during, looks)


def test_the_health_wait_calls_its_watch_between_looks_and_ends_with_what_it_raises():
    env = fake_environment()
    env.router.healthy = {"canary": 0, "stable": 4}
    calls = []

    def between():
        calls.append(env.router.healthy["canary"])
        raise FailedWhileScaling("5%: the canary failed the judge")

    @flow
    def waited():
        return wait_healthy(env, "canary", 300, 2, between=between)

    with pytest.raises(FailedWhileScaling, match="the canary failed the judge"):
        waited()
    assert calls == [0]


class Died(BaseException):
    """The run's process dying mid-wait (a BaseException, as a real kill's: nothing catches it)."""


@flow
def progressive_on(env, rollout: RolloutSpec, owner: str):
    from flows.progressive import run_progressive

    return run_progressive(env, rollout, scripted(), owner=owner, actor="alice")


def ledger_env():
    from rollway.fakes import FakeLedger

    env = fake_environment(canary_error_rate=0.0)
    env.ledger = FakeLedger()
    return env


def test_the_ledger_records_a_rollback_made_while_the_canary_scaled():
    env = ledger_env()
    slow_scale_up(env, breaks_at=2)
    result = progressive_on(env, spec(5, 50, 100), "run-1")
    assert result.outcome == "rolled_back", result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert [t.to_weights.canary for t in record.history if t.kind == "shift"] == [5]
    assert record.weights == Weights(stable=100, canary=0)
    rolled = [t for t in record.history if t.kind.startswith("rollback")]
    assert rolled and "judged while the canary scaled for 50%, before the shift" in (rolled[0].comment or ""), rolled


def dies_in_the_ecs_wait(env) -> None:
    """Run run-1 of a 5/50/100 rollout until its process dies at the tenth poll of the scale-up for 50 %."""
    wait = env.deployer.wait_stable
    polls = []

    def dies_mid_wait(services, timeout_seconds, expected=None, *, between=None):
        def watched():
            polls.append(env.clock.now())
            if len(polls) == 10:
                raise Died()
            between()
        return wait(services, timeout_seconds, expected, between=watched if between is not None else None)

    env.deployer.wait_stable = dies_mid_wait
    try:
        with pytest.raises(Died):
            progressive_on(env, spec(5, 50, 100), "run-1")
    finally:
        env.deployer.wait_stable = wait
    assert env.router.weights == Weights(stable=95, canary=5) and len(polls) == 10


def test_a_run_that_died_while_the_canary_scaled_is_resumed_from_the_passed_stage():
    """The ledger says the 5 % stage passed: the next run shifts to 50 % from there and goes on."""
    env = ledger_env()
    slow_scale_up(env)
    dies_in_the_ecs_wait(env)
    env.clock.sleep(601)  # the dead run's lease runs out
    result = progressive_on(env, spec(5, 50, 100), "run-2")
    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(env.targets.canary_service)
    assert [t.to_weights.canary for t in record.history if t.kind == "shift"] == [5, 50, 100]


def test_a_rollback_while_scaling_shows_as_one_warning_with_no_error_nor_traceback(caplog):
    """The watch's rollback is a planned ending, as a rollback at a stage's look is: the look's line says
    why, and the ECS wait it ended is not logged as a task that failed (an ERROR line quoting the
    exception, read by the person on call as a crash of rollway above the rollback)."""
    env = fake_environment(canary_error_rate=0.0)
    slow_scale_up(env, breaks_at=2)
    with caplog.at_level(logging.INFO):
        result = canary_on(env, spec(5, 50, 100))
    assert result.outcome == "rolled_back", result.reason
    failed = [r for r in caplog.records if "FailedWhileScaling" in r.getMessage() or (
        r.exc_info and isinstance(r.exc_info[1], FailedWhileScaling))]
    assert failed == [], [(r.levelname, r.getMessage()) for r in failed]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    said = [r.getMessage() for r in caplog.records if "the canary failed the judge" in r.getMessage()]
    assert len(said) == 1 and "the shift to 50% is not made and the rollout rolls back" in said[0], said


def test_a_run_resumed_while_ecs_still_starts_the_tasks_watches_the_rest_of_that_wait():
    """The run died in the ECS wait, the canary scaled to 2 tasks of which 1 runs yet. The run that
    resumes finds it scaled already: it waits for ECS to start the other as the dead run would have,
    judging the canary meanwhile, and rolls back from 5 % when it fails there, before the shift."""
    env = ledger_env()
    written = slow_scale_up(env)
    dies_in_the_ecs_wait(env)
    canary = env.targets.canary_service
    env.deployer.services[canary] = env.deployer.services[canary].model_copy(update={"running": 1})
    assert env.deployer.services[canary].desired == 2
    env.clock.sleep(601)  # the dead run's lease runs out
    env.metrics.behaviour = steady(5000.0, 0.001, 0.05)  # the canary fails while ECS starts the second task
    result = progressive_on(env, spec(5, 50, 100), "run-2")
    assert result.outcome == "rolled_back", result.reason
    assert "judged while the canary scaled for 50%, before the shift" in result.reason, result.reason
    assert all(w.canary < 50 for w in written), written
    assert env.router.weights == Weights(stable=100, canary=0)


def test_a_pass_stamped_ahead_of_the_resuming_runs_clock_leaves_the_scale_up_watched():
    """The dead run's host ran an hour ahead: the ledger stamps the 5 % stage's pass an hour after
    the resuming run's now. Counted from there, the scale-up's window began past every look of the
    wait and read no metrics: the failing canary got 50 % of the traffic before it was judged."""
    env = ledger_env()
    written = slow_scale_up(env)
    dies_in_the_ecs_wait(env)
    canary = env.targets.canary_service
    env.deployer.services[canary] = env.deployer.services[canary].model_copy(update={"running": 1})
    env.clock.sleep(601)  # the dead run's lease runs out
    stored = env.ledger._rollouts[canary]
    stored[-1] = stored[-1].model_copy(update={"history": tuple(
        t.model_copy(update={"at": env.clock.now() + 3600}) if t.kind == "verdict" else t for t in stored[-1].history)})
    env.metrics.behaviour = steady(5000.0, 0.001, 0.05)  # the canary fails while ECS starts the second task
    result = progressive_on(env, spec(5, 50, 100), "run-2")
    assert result.outcome == "rolled_back", result.reason
    assert "judged while the canary scaled for 50%, before the shift" in result.reason, result.reason
    assert all(w.canary < 50 for w in written), written


def test_the_ledger_stamps_a_stages_pass_when_the_judge_passed_it():
    """A read of the metrics takes time (seconds at real time, a minute of a sped-up clock): the
    verdict stamped once written put the pass after the look that passed it, across a period's
    boundary at times, and a run resuming the rollout counted the stage's windows from another
    period than the run that passed it: one window's share of the alpha spent on two tests."""
    env = ledger_env()
    observe = env.metrics.observe

    def slow(start, end):
        env.clock.sleep(30)
        return observe(start, end)

    env.metrics.observe = slow
    result = progressive_on(env, spec(5, 100), "run-1")
    assert result.outcome == "promoted", result.reason
    record = env.ledger.get(env.targets.canary_service)
    (passed,) = [t for t in record.history if t.kind == "verdict" and t.from_stage == 0]
    assert passed.at == result.stages[0].ended_at, (passed.at, result.stages[0].ended_at)


def bars(messages: list[str], looks: str = "watching the canary while it scales") -> list[int]:
    """The pass bars (evidence reached N, or pass evidence x of N) the ``looks`` were judged at: the
    smaller a window's share of the alpha, the higher its bars."""
    return [int(found.replace(",", "")) for m in messages if looks in m
            for found in re.findall(r"(?:reached|pass evidence [\d.,]+ of) ([\d,]+)", m)]


def test_a_run_resumed_mid_scale_up_judges_on_what_the_dead_runs_looks_left_of_the_alpha(caplog):
    """The dead run's looks during the scale-up spent the first window's share of the alpha (half of
    it). The run resuming the wait goes on with the windows that follow, at the shares left, rather
    than from the first again: each resume began the split anew, and a stage whose runs died in its
    waits could roll a healthy canary back at more than the spec's alpha."""
    env = ledger_env()
    slow_scale_up(env)
    with caplog.at_level(logging.INFO):
        dies_in_the_ecs_wait(env)
    dead = bars([r.getMessage() for r in caplog.records])
    assert dead and len(set(dead)) == 1, dead
    canary = env.targets.canary_service
    env.deployer.services[canary] = env.deployer.services[canary].model_copy(update={"running": 1})
    env.clock.sleep(601)  # the dead run's lease runs out
    caplog.clear()
    with caplog.at_level(logging.INFO):
        result = progressive_on(env, spec(5, 50, 100), "run-2")
    assert result.outcome == "promoted", result.reason
    resumed = bars([r.getMessage() for r in caplog.records if "scales for 50%" in r.getMessage()])
    assert resumed and min(resumed) >= 2 * dead[0], (dead, resumed)


def test_the_scale_up_after_a_short_approval_pause_goes_on_with_the_pauses_window(caplog):
    """Approved within a minute of the pass, the shift's scale-up judges the window its pause's look
    judged, at the same share of the alpha: the watch that follows spends no share of its own for
    starting, only the windows the rollout clock begins do (a scale-up with no pause before it
    starts at the first share, as a pause's first window does)."""
    env = fake_environment(canary_error_rate=0.0)
    slow_scale_up(env)
    stages = [Stage(weight=5, bake_seconds=600), Stage(weight=50, bake_seconds=600, approval=True), Stage(weight=100)]
    approve = ApprovalAnswer(action="approve", approver="alice", comment="go")

    @flow
    def approved(env, rollout):
        return run_canary(env, rollout, scripted(approve))

    with caplog.at_level(logging.INFO):
        result = approved(env, RolloutSpec(image=IMAGE, stages=stages))
    assert result.outcome == "promoted", result.reason
    said = [r.getMessage() for r in caplog.records]
    paused = bars(said, "paused at 5%: the judge looked again")
    scaling = bars([m for m in said if "scales for 50%" in m])
    assert paused and scaling, said
    # The first ten minutes after the pass are one window: the pause's look and the scale-up's share its alpha.
    assert set(scaling[:8]) == set(paused), (paused, scaling)
