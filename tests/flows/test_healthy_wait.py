"""Waiting for healthy targets after a scale-up.

On a real load balancer a new target is `initial` until it has passed the target group's
healthy threshold of checks (AWS's defaults: 5 checks 30 s apart; Webordinary's 2 x 15 s),
after its task is RUNNING, which is all the ECS wait waits for. moto marks targets healthy at
once, so these tests give the fake router that timeline on a fake monotonic clock.
"""

from __future__ import annotations

import pytest
from prefect import flow

import flows.engine as engine
from flows.canary import run_canary
from flows.finalize import run_finalize
from flows.rollback import execute_rollback
from rollway.approvals import scripted
from rollway.fakes import FakeRouter
from rollway.model import ServiceState, Weights
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import STABLE_TD, fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


class WallTime:
    """Stands in for the ``time`` module in flows.engine: sleeping moves it."""

    def __init__(self) -> None:
        self.t = 0.0

    def monotonic(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds


class SlowTargets(FakeRouter):
    """A version's targets turn healthy ``after`` seconds after its service was scaled up."""

    def __init__(self, wall: WallTime, deployer, services: dict[str, str], after: float) -> None:
        super().__init__()
        self.wall, self.deployer, self.services, self.after = wall, deployer, services, after
        self.since: dict[str, float] = {}
        self.looks = 0

    def healthy_targets(self, version: str) -> int:
        self.looks += 1
        desired = self.deployer.services[self.services[version]].desired
        if desired == 0:
            self.since.pop(version, None)
            return 0
        started = self.since.setdefault(version, self.wall.t)
        return desired if self.wall.t - started >= self.after else 0


@pytest.fixture
def wall(monkeypatch) -> WallTime:
    clock = WallTime()
    monkeypatch.setattr(engine, "time", clock)
    return clock


def slow_env(wall: WallTime, after: float):
    env = fake_environment(canary_error_rate=0.0)
    t = env.targets
    env.router = SlowTargets(wall, env.deployer, {"stable": t.stable_service, "canary": t.canary_service}, after)
    env.metrics.router = env.router
    return env


@flow
def canary_on(env, rollout: RolloutSpec):
    return run_canary(env, rollout, scripted())


def test_a_canary_whose_new_targets_take_45_s_to_pass_health_checks_is_shifted_not_failed(wall):
    """The default spec waits for the health checks (it used to give up after the 30 s weight
    read-back wait, and the hook rolled a healthy rollout back), and looks with a growing gap
    instead of ten times a second."""
    env = slow_env(wall, after=45.0)
    result = canary_on(env, RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600),
                                                              Stage(weight=100, bake_seconds=600)]))
    assert result.outcome == "promoted", result.reason
    assert 45.0 <= wall.t <= 45.0 + engine.HEALTHY_POLL_MAX_SECONDS
    assert env.router.looks <= 20, f"{env.router.looks} DescribeTargetHealth calls for one 45 s wait"


def test_targets_that_never_pass_are_refused_after_healthy_timeout_seconds(wall):
    env = slow_env(wall, after=float("inf"))
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                          healthy_timeout_seconds=120)
    with pytest.raises(RuntimeError, match="canary target group has no healthy targets after 120 s"):
        canary_on(env, rollout)
    assert wall.t == pytest.approx(120.0)
    assert env.router.weights == Weights(stable=100, canary=0), "traffic went to a group with no healthy target"


def test_the_wait_for_healthy_targets_and_its_refusal_name_the_setting_and_what_to_do(wall, caplog):
    """The wait line and the refusal gave a figure of seconds alone: the person on call could not
    tell which setting made the wait, nor what to do about targets that never became healthy."""
    import logging

    env = slow_env(wall, after=float("inf"))
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                          healthy_timeout_seconds=120)
    with caplog.at_level(logging.INFO), pytest.raises(RuntimeError) as refused:
        canary_on(env, rollout)
    said = str(refused.value)
    assert ("the canary target group has no healthy targets after 120 s (the spec's healthy_timeout_seconds); "
            "refusing to send traffic to it") in said, said
    assert "the target group's health check" in said and "raise the spec's healthy_timeout_seconds" in said, said
    assert any("waiting up to 120 s (the spec's healthy_timeout_seconds) for the load balancer's health checks"
               in r.getMessage() for r in caplog.records), caplog.text


@flow
def rollback_on(env):
    return execute_rollback(env, "error rate 7%", actor="on-call")


def scaled_down_with_all_on_the_canary(env):
    """The old service scaled to 0 (decommissioned), the canary carrying everything on 4 tasks."""
    t = env.targets
    env.deployer.services[t.stable_service] = ServiceState(name=t.stable_service, task_definition=STABLE_TD,
                                                           desired=0, running=0)
    env.deployer.services[t.canary_service] = ServiceState(name=t.canary_service, task_definition=STABLE_TD,
                                                           desired=4, running=4)
    env.router.weights = Weights(stable=0, canary=100)
    return env


def test_a_rollback_waits_for_a_scaled_up_stable_service_to_pass_health_checks(wall):
    """A rollback after the old service was scaled down must wait for its new targets, not
    fail after 30 s with the traffic still on the version being rolled back."""
    env = scaled_down_with_all_on_the_canary(slow_env(wall, after=90.0))
    result = rollback_on(env)
    assert result.weights == Weights(stable=100, canary=0)
    assert wall.t >= 90.0


@flow
def finalize_on(env):
    return run_finalize(env, actor="alice", unrecorded=True, image=IMAGE)


def test_finalize_waits_for_a_stable_service_scaled_up_from_zero(wall):
    """After the old service was decommissioned, finalize scales it up on the promoted
    revision: its new targets get the health-check wait, not the 30 s read-back wait."""
    env = slow_env(wall, after=90.0)
    t = env.targets
    env.deployer.task_definitions["promoted:2"] = IMAGE
    env.deployer.services[t.stable_service] = ServiceState(name=t.stable_service, task_definition=STABLE_TD,
                                                           desired=0, running=0)
    env.deployer.services[t.canary_service] = ServiceState(name=t.canary_service, task_definition="promoted:2",
                                                           desired=4, running=4)
    env.router.weights = Weights(stable=0, canary=100)
    result = finalize_on(env)
    assert result.weights == Weights(stable=100, canary=0), result
    assert wall.t >= 90.0


@flow
def quiet_rollback_on(env):
    return execute_rollback(env, "error rate 7%", actor="on-call", notify=False)


@pytest.mark.parametrize("rolling_back, pages", [(rollback_on, 1), (quiet_rollback_on, 0)], ids=["paged", "quiet"])
def test_a_rollback_whose_stable_service_never_gets_healthy_pages_that_it_failed(wall, rolling_back, pages):
    """The rollback's own page goes out once the traffic is back on stable; one that never got
    there used to page nobody, with users still on the version being rolled back. A quiet rollback
    (another rollback of the rollout told people) pages nothing here either."""
    env = scaled_down_with_all_on_the_canary(slow_env(wall, after=float("inf")))
    t = env.targets
    with pytest.raises(RuntimeError, match="stable target group has no healthy targets"):
        rolling_back(env)
    assert len(env.notifier.messages) == pages, env.notifier.messages
    if pages:
        subject, body = env.notifier.messages[0]
        assert subject == f"Rollback FAILED: {t.canary_service}"
        assert f"could NOT be moved back to {t.stable_service}" in body
        assert f"holds {Weights(stable=0, canary=100)}" in body
        assert f"scaled {t.stable_service} to 4" in body and "error rate 7%" in body
    assert env.router.weights == Weights(stable=0, canary=100)


def test_a_rollback_that_cannot_read_the_stable_service_pages_that_it_failed():
    """The services were read before the part of the rollback whose failure pages: a DescribeServices
    that IAM denied (or a renamed service) failed every rollback, the judge's and its hook's, with
    users still on the canary and nobody paged."""
    from botocore.exceptions import ClientError

    from rollway.aws.denied import PermissionDenied

    env = fake_environment()
    t = env.targets
    env.router.weights = Weights.canary_at(25)

    def denied(service):
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "not authorized: ecs:DescribeServices"}},
                          "DescribeServices")

    env.deployer.describe = denied
    # Named as the statement of the rollout's policy granting it (rollway.aws.denied.PermissionDenied).
    with pytest.raises(PermissionDenied, match="ecs:DescribeServices.*statement ReadTheTwoServices"):
        rollback_on(env)
    [(subject, body)] = env.notifier.messages
    assert subject == f"Rollback FAILED: {t.canary_service}"
    assert f"could NOT be moved back to {t.stable_service}" in body and "not authorized: ecs:DescribeServices" in body
    assert f"holds {Weights.canary_at(25)}" in body and "error rate 7%" in body
    assert env.router.weights == Weights.canary_at(25)


class StaggeredStable(FakeRouter):
    """``StaggeredTargets`` (each task's target healthy ``after`` seconds after the scale-up that
    started it), recording the stable targets that were healthy when each move was written."""

    def __init__(self, wall: WallTime, deployer, services: dict[str, str], after: float) -> None:
        super().__init__()
        self.staggered = StaggeredTargets(wall, deployer, services, after)
        self.moves: list[tuple[Weights, int]] = []  # (weights written, healthy stable targets then)

    def healthy_targets(self, version: str) -> int:
        return self.staggered.healthy_targets(version)

    def set_weights(self, weights: Weights) -> Weights:
        self.moves.append((weights, self.healthy_targets("stable")))
        return super().set_weights(weights)


def scaled_in_with_75_on_the_canary():
    """The old service scaled in to 1 task (autoscaling) while the canary carries 75 % on 4."""
    env = fake_environment(canary_error_rate=0.0)
    t = env.targets
    env.deployer.services[t.stable_service] = ServiceState(name=t.stable_service, task_definition=STABLE_TD,
                                                           desired=1, running=1)
    env.deployer.services[t.canary_service] = ServiceState(name=t.canary_service, task_definition=STABLE_TD,
                                                           desired=4, running=4)
    env.router.weights = Weights.canary_at(75)
    return env, t


def test_a_rollback_moves_the_traffic_once_the_stable_tasks_it_started_pass_health_checks(wall):
    """Autoscaling had scaled the old service in to 1 task while the canary carried 75 % on 4: the
    rollback scaled it back to 4, then moved all the traffic as soon as the one old target was
    healthy, while the three it had just started were still `initial`: the load balancer sent
    every user to the one task sized for a quarter of them."""
    env, t = scaled_in_with_75_on_the_canary()
    env.router = StaggeredStable(wall, env.deployer, {"stable": t.stable_service, "canary": t.canary_service},
                                 after=60.0)
    env.router.staggered.started["stable"] = [-600.0]  # serving long before the rollback
    env.router.weights = Weights.canary_at(75)
    env.metrics.router = env.router

    result = rollback_on(env)

    assert result.weights == Weights(stable=100, canary=0)
    assert env.router.moves == [(Weights(stable=100, canary=0), 4)], env.router.moves
    assert wall.t >= 60.0


def test_a_rollback_whose_scaled_up_stable_service_is_only_partly_healthy_still_moves_the_traffic_saying_so(wall):
    """The wait for every stable task it started ran out with 2 of the 4 targets healthy: the
    rollback failed, paged "could NOT be moved back" and left every user on the version being
    rolled back, where it used to move them at the first healthy target. It moves them once the
    wait has run out, to the healthy ones, and says how many took them."""
    env, t = scaled_in_with_75_on_the_canary()
    env.router.healthy["stable"] = 2  # two of the three started never pass their health checks

    result = rollback_on(env)

    assert result.weights == Weights(stable=100, canary=0)
    assert wall.t >= 300.0  # the whole wait for all four first
    [(subject, body)] = env.notifier.messages
    assert subject == f"Rollback: {t.canary_service}", subject
    assert (f"Only 2 of the 4 {t.stable_service} targets needed for all the traffic were healthy after 300 s "
            "(the rollout spec's healthy_timeout_seconds or the rollback flow's (a rollback waits it, and 300 s at "
            "least))") in body, body
    assert "moved to them all the same" in body, body
    assert f"went on with 2 of 4 {t.stable_service} targets healthy after 300 s" in result.steps, result.steps


class StaggeredTargets(FakeRouter):
    """Each task's target turns healthy ``after`` seconds after the scale-up that started it: those
    that served the last stage are healthy while the ones started for this stage are `initial`."""

    def __init__(self, wall: WallTime, deployer, services: dict[str, str], after: float) -> None:
        super().__init__()
        self.wall, self.deployer, self.services, self.after = wall, deployer, services, after
        self.started: dict[str, list[float]] = {version: [] for version in services}
        self.shifts: list[tuple[int, int]] = []  # (canary weight written, healthy canary targets then)

    def healthy_targets(self, version: str) -> int:
        desired = self.deployer.services[self.services[version]].desired
        started = self.started[version]
        started.extend([self.wall.t] * (desired - len(started)))
        del started[desired:]
        return sum(1 for t in started if self.wall.t - t >= self.after)

    def set_weights(self, weights: Weights) -> Weights:
        self.shifts.append((weights.canary, self.healthy_targets("canary")))
        return super().set_weights(weights)


def test_a_stage_waits_for_the_targets_started_for_it_not_only_for_those_already_healthy(wall):
    """The wait ended at the first healthy target: a shift to 25 % went out while the four tasks
    started for it were still `initial`, and the one task sized for 5 % took the whole 25 %."""
    env = fake_environment(canary_error_rate=0.0)
    t = env.targets
    env.deployer.services[t.stable_service] = ServiceState(name=t.stable_service, task_definition=STABLE_TD,
                                                           desired=20, running=20)
    env.router = StaggeredTargets(wall, env.deployer, {"stable": t.stable_service, "canary": t.canary_service},
                                  after=60.0)
    env.router.started["stable"] = [0.0] * 20
    env.metrics.router = env.router
    result = canary_on(env, RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (5, 25, 100)]))
    assert result.outcome == "promoted", result.reason
    assert env.router.shifts == [(5, 1), (25, 5), (100, 20)]


@flow
def progressive_on(env, rollout: RolloutSpec):
    from flows.progressive import run_progressive
    from rollway.approvals import auto_approve

    return run_progressive(env, rollout, auto_approve(), owner="run-1", actor="alice", phased=False)


def test_a_progressive_rollout_given_less_time_than_the_canary_groups_health_checks_records_nothing(wall):
    """AWS's default health check (30 s apart, answered within 5 s: up to 35 s to the one check a
    new target must pass) and healthy_timeout_seconds 20: shifts would time out and roll back. Refused before the rollout is recorded or anything moves."""
    from flows.canary import RolloutRefused
    from rollway.fakes import FakeLedger
    from rollway.model import TargetGroup

    env = slow_env(wall, after=150.0)
    env.ledger = FakeLedger()
    canary = env.router.groups["canary"]
    env.router.groups["canary"] = TargetGroup(arn=canary.arn, interval_seconds=30, timeout_seconds=5)
    rollout = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=600), Stage(weight=100, bake_seconds=600)],
                          healthy_timeout_seconds=20)
    with pytest.raises(RolloutRefused, match=r"healthy_timeout_seconds is 20 s, but the canary target group "
                                             r"webordinary-edit-canary .* may need 35 s"):
        progressive_on(env, rollout)
    assert env.ledger.get(env.targets.canary_service) is None
    assert env.router.weights == Weights(stable=100, canary=0) and wall.t == 0.0
    assert not [c for c in env.deployer.calls if not c.startswith(("describe", "image_of"))], env.deployer.calls


class UnreadAfterTheWait(FakeRouter):
    """A load balancer that stops answering a short read (the one after the health wait's bound)."""

    def reading(self, seconds: float) -> FakeRouter:
        if seconds >= 300:
            return self
        failing = FakeRouter()

        def healthy_targets(version: str) -> int:
            from botocore.exceptions import ClientError
            raise ClientError({"Error": {"Code": "Throttling", "Message": "Rate exceeded"}}, "DescribeTargetHealth")

        failing.healthy_targets = healthy_targets
        return failing


def test_a_rollback_whose_wait_ran_out_short_moves_the_traffic_on_the_waits_own_count(wall):
    """The wait for all four stable targets ran out with 2 healthy; the rollback then looked again
    (a DescribeTargetHealth of its own) to learn how many, and that look, throttled, failed the
    rollback: every user stayed on the version being rolled back. The wait's refusal says how many
    it found at its last look, and the rollback moves on that."""
    env, t = scaled_in_with_75_on_the_canary()
    env.router = UnreadAfterTheWait()
    env.router.weights = Weights.canary_at(75)
    env.router.healthy["stable"] = 2
    env.metrics.router = env.router

    result = rollback_on(env)

    assert result.weights == Weights(stable=100, canary=0)
    assert f"went on with 2 of 4 {t.stable_service} targets healthy after 300 s" in result.steps, result.steps


def test_a_rollback_whose_stable_service_never_gets_steady_names_the_setting_of_its_wait(wall):
    """The stable service it scaled up never got steady (tasks that do not start): the page said
    "services <stable> not stable after 600s", naming neither the setting that bounds the wait nor
    where to look, at the moment users were still on the version being rolled back."""
    env, t = scaled_in_with_75_on_the_canary()
    env.deployer.unstable.add(t.stable_service)

    with pytest.raises(Exception) as failed:
        rollback_on(env)

    said = str(failed.value)
    assert f"services {t.stable_service} not stable after 10 min" in said, said
    # The wait is never under 10 min, whatever a spec says: "the rollout spec's scale_timeout_seconds, 600 s at
    # least" beside "after 10 min" said one wait two ways, and read as a floor on the spec's setting (60 s is valid).
    assert ("or raise the rollout spec's scale_timeout_seconds or the rollback flow's (a rollback waits the longest "
            "of those it has, and 10 min at least) if they only need longer") in said and "stopped tasks" in said, said
    [(subject, body)] = env.notifier.messages
    assert subject == f"Rollback FAILED: {t.canary_service}" and "scale_timeout_seconds" in body, body
    assert env.router.weights == Weights.canary_at(75)


class PartlyHealthy(FakeRouter):
    """One healthy target in each group, however many its service runs."""

    def healthy_targets(self, version: str) -> int:
        return 1


@flow
def rollback_waiting(env, seconds: float):
    return execute_rollback(env, "error rate 7%", actor="on-call", healthy_timeout_seconds=seconds)


def test_a_rollback_gone_on_with_too_few_healthy_targets_says_its_wait_as_given(wall, caplog):
    """The wait's figure was written with ``:g``: a healthy_timeout_seconds of 1000.125 read "1000.12 s"
    in the wait's line, the warning and the rollback's steps, a figure nobody gave."""
    import logging

    env = scaled_down_with_all_on_the_canary(fake_environment())
    weights = env.router.weights
    env.router = PartlyHealthy()
    env.router.weights, env.metrics.router = weights, env.router
    with caplog.at_level(logging.INFO):
        result = rollback_waiting(env, 1000.125)
    assert result.weights == Weights(stable=100, canary=0)
    stable = env.targets.stable_service
    assert f"went on with 1 of 4 {stable} targets healthy after 1000.125 s" in result.steps, result.steps
    said = [r.getMessage() for r in caplog.records]
    assert any("waiting up to 1000.125 s (the rollout spec's healthy_timeout_seconds" in m for m in said), said
    assert any(f"only 1 of the 4 {stable} targets needed for all the traffic are healthy after 1000.125 s" in m
               for m in said), said
    assert "1000.12 s" not in caplog.text, caplog.text


def test_a_rollback_says_the_wait_it_uses_instead_of_the_one_asked_as_given(monkeypatch, caplog):
    """The line saying which wait a rollback uses instead of a shorter one asked wrote both with
    ``:g``: a spec's healthy_timeout_seconds of 1000.125 read "waiting 1000.12 s", a figure nobody gave."""
    import logging

    import flows.rollback

    log = logging.getLogger("tests.rollback_waits")
    monkeypatch.setattr(flows.rollback, "get_run_logger", lambda: log)
    waits = {"healthy_timeout_seconds": 1000.125, "scale_timeout_seconds": 1234567.0}
    with caplog.at_level(logging.INFO, logger=log.name):
        flows.rollback._say_waits_raised("r-7", asked={name: 5.0 for name in waits}, spec=waits, used=waits)
    said = [r.getMessage() for r in caplog.records]
    assert ("healthy_timeout_seconds: waiting 1000.125 s, not the 5 s asked: rollout r-7's spec says 1000.125 s "
            "(a rollback never waits less than the open rollout's spec, nor than the default)") in said, said
    assert any(m.startswith("scale_timeout_seconds: waiting 1234567 s, not the 5 s asked: rollout r-7's spec says "
                            "1234567 s") for m in said), said
