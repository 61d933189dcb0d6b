"""Guardrails on requests the load balancer answered 5xx itself, and assess() on periods whose
counts contradicted each other."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from rollway.judge import assess
from rollway.judge.guardrails import UNATTRIBUTED, check, check_totals, unattributed
from rollway.model import Interval, Observation, Verdict, VersionSample
from rollway.phases import Phase
from rollway.spec import Guardrails

GUARDRAILS = Guardrails()  # 1 % during stages, 5 % while monitoring, from 5 errors


def observation(*intervals: Interval) -> Observation:
    return Observation(start=0, end=60.0 * len(intervals), intervals=intervals)


def minute(i: int, baseline: int | None, canary: int | None, unserved: int | None = None, **kw) -> Interval:
    return Interval(
        t=60.0 * (i + 1),
        baseline=None if baseline is None else VersionSample(requests=baseline),
        canary=None if canary is None else VersionSample(requests=canary),
        unserved=unserved,
        **kw,
    )


class Passes:
    """A judge that would pass anything: what is left is the guardrails' and assess's doing."""

    uses_history = False

    def evaluate(self, intervals, *, stage_over, history=()):
        return Verdict(phase=Phase.SUCCESSFUL, reason="the judge would pass it")


def test_after_promotion_a_minute_of_503s_from_the_load_balancer_rolls_back():
    # Four clean minutes at 1,200 requests, then the new version's tasks are gone: 1,200 503s.
    obs = observation(*(minute(i, None, 1200) for i in range(4)), minute(4, None, None, unserved=1200))

    verdict = check(GUARDRAILS, obs, monitoring=True)

    assert verdict.phase is Phase.FAILED
    assert "20.00% (1,200/6,000)" in verdict.reason and "by the load balancer itself" in verdict.reason


def test_during_a_stage_503s_over_the_guardrail_share_of_all_requests_roll_back():
    # 10 % canary without a target: its 10 % of the requests are 503s; its own metrics are absent.
    obs = observation(*(minute(i, 1080, None, unserved=120) for i in range(3)))

    verdict = check(GUARDRAILS, obs, monitoring=False)

    assert verdict.phase is Phase.FAILED
    assert verdict.metric == "unserved_rate" and verdict.statistic == pytest.approx(0.1)
    assert "360 of the 3,600 requests" in verdict.reason


CLEAN_HOUR = tuple(minute(i - 60, 1200, None, unserved=0) for i in range(60))  # before the stage: no 5xx of its own


def test_a_few_503s_that_may_be_the_canarys_hold_the_stage_until_its_own_requests_outweigh_them():
    # The load balancer answered no 5xx itself in the hour before the stage; now 2 among 1,200
    # requests a minute (0.17 %): they may be all the canary's 60 a minute (3 %), so the stage
    # is neither rolled back nor passed on.
    early = [minute(0, 1140, 60, unserved=2)]
    held = check(GUARDRAILS, observation(*early), monitoring=False, history=CLEAN_HOUR)
    assert held.phase is Phase.RUNNING
    assert "not passing on it" in held.reason and "3.23%" in held.reason

    # Once the canary has served enough, even all of them as the canary's is within 1 %.
    later = early + [minute(i, 1140, 60) for i in range(1, 4)]
    assert check(GUARDRAILS, observation(*later), monitoring=False, history=CLEAN_HOUR).phase is Phase.SUCCESSFUL


@pytest.mark.parametrize("minutes", [10, 60, 600, 6000])
def test_the_load_balancers_steady_background_of_5xx_never_holds_a_healthy_canary(minutes):
    """0.1 % of requests answered 5xx by the load balancer before and during the stage (other
    rules, the baseline's targets cycling): counted whole as the canary's, this kept a 5 %
    canary's error bound near 2 % however long it baked, and every stage paused for a person."""
    history = tuple(minute(i - 60, 1200, None, unserved=1 if i % 5 == 0 else 2) for i in range(60))
    stage = [minute(i, 1140, 60, unserved=1 if i % 5 == 0 else 2) for i in range(minutes)]
    verdict = check(GUARDRAILS, observation(*stage), monitoring=False, history=history)
    assert verdict.phase is Phase.SUCCESSFUL, verdict.reason


def test_a_canary_losing_its_targets_above_the_background_is_still_held():
    history = tuple(minute(i - 60, 1200, None, unserved=1) for i in range(60))  # 0.08 % before
    stage = [minute(i, 1140, 50, unserved=10) for i in range(10)]  # a sixth of the canary's 60 refused
    verdict = check(GUARDRAILS, observation(*stage), monitoring=False, history=history)
    assert verdict.phase is Phase.RUNNING and "may be the canary's" in verdict.reason, verdict.reason


def test_without_the_rate_before_the_rollout_all_of_them_may_be_the_canarys():
    """A canary whose targets fail serves less: spreading the 5xx like the served traffic gave
    it almost none of them, and a canary with 15 % of its requests refused passed."""
    stage = [minute(i, 1140, 51, unserved=9) for i in range(10)]
    verdict = check(GUARDRAILS, observation(*stage), monitoring=False)
    assert verdict.phase is Phase.RUNNING, verdict.reason
    assert assess(Passes(), GUARDRAILS, observation(*stage), stage_over=True).phase is Phase.RUNNING


def test_periods_the_canary_served_in_are_not_background():
    """The hour before a later stage is the stage before (or, after a resume, this one): a
    canary already refused there made its own failure the background, and passed."""
    refused_before = tuple(minute(i - 60, 1140, 51, unserved=9) for i in range(60))
    stage = [minute(i, 1140, 51, unserved=9) for i in range(10)]
    verdict = check(GUARDRAILS, observation(*stage), monitoring=False, history=refused_before)
    assert verdict.phase is Phase.RUNNING, verdict.reason


def test_a_stage_a_judge_would_pass_does_not_pass_over_unattributable_503s():
    obs = observation(minute(0, 1140, 60, unserved=3))

    verdict = assess(Passes(), GUARDRAILS, obs, stage_over=True, history=CLEAN_HOUR)

    assert verdict.phase is Phase.RUNNING


def test_negative_counts_of_503s_are_refused():
    with pytest.raises(ValueError, match="unserved must not be negative"):
        check_totals(GUARDRAILS, VersionSample(requests=10), 10, unserved=-1, monitoring=False)
    with pytest.raises(ValidationError, match="greater than or equal to 0"):
        minute(0, 10, 10, unserved=-1)


@pytest.mark.parametrize("stage_over", [False, True])
def test_a_settled_inconsistent_period_is_inconclusive_unless_the_rest_rolls_back(stage_over):
    """It was an ERROR: the stage held to read again, and settled figures never change. Before
    the stage is over it goes on, judged (an approve at a pause then would skip the bake)."""
    obs = observation(minute(0, 1140, 60), minute(1, 1140, None, inconsistent=("canary",)))

    settled = assess(Passes(), GUARDRAILS, obs, stage_over=stage_over, settled_until=120)
    pending = assess(Passes(), GUARDRAILS, obs, stage_over=False, settled_until=60)

    assert settled.phase is (Phase.INCONCLUSIVE if stage_over else Phase.RUNNING), settled
    assert settled.metric == "inconsistent"
    assert settled.reason.startswith(
        "metrics inconsistent: more 5xx than requests in the canary's interval ending 120, settled by now; "
        "reading again will not change them")
    assert pending.phase is Phase.SUCCESSFUL
    # A canary failing in the other periods is rolled back, not held over the wrong one.
    failing = Interval(t=60.0, baseline=VersionSample(requests=1140), canary=VersionSample(requests=60, errors=30))
    obs = observation(failing, minute(1, None, 60, inconsistent=("baseline",)))
    assert assess(Passes(), GUARDRAILS, obs, stage_over=False).phase is Phase.FAILED


def test_an_inconsistent_version_must_have_no_sample():
    with pytest.raises(ValidationError, match="marked inconsistent but has a sample"):
        minute(0, 1140, 60, inconsistent=("canary",))
    with pytest.raises(ValidationError, match="twice"):
        minute(0, None, None, inconsistent=("canary", "canary"))
    with pytest.raises(ValidationError):
        minute(0, None, None, inconsistent=("stable",))  # the interval's names: baseline, canary


@pytest.mark.parametrize("refused_minutes", [1, 10])
def test_refused_minutes_of_an_earlier_attempt_are_not_background(refused_minutes):
    """A canary with weight and no target has no RequestCount either, so an earlier attempt's
    refused minutes in the hour looked quiet, became the background, and a canary refusing
    3 % of its requests passed."""
    clean = 60 - refused_minutes
    history = tuple(minute(i - 60, 1140 if i < clean else 1080, None, unserved=0 if i < clean else 120)
                    for i in range(60))
    stage = [minute(i, 1140, 58, unserved=2) for i in range(30)]
    verdict = check(GUARDRAILS, observation(*stage), monitoring=False, history=history)
    assert verdict.phase is Phase.RUNNING, verdict.reason


NIGHT = observation(*(minute(i, None, None, unserved=5 if i == 2 else None) for i in range(5)))  # 5 strays, no requests


@pytest.mark.parametrize("monitoring", [True, False])
def test_stray_load_balancer_5xx_with_no_request_count_are_no_error_rate(monitoring):
    """At night: five 5xx from the load balancer and no RequestCount for anyone read as
    "100.00% (5/5)" and rolled the release back. An absent RequestCount is no data, not zero
    requests; the five are not passed over either."""
    assert unattributed(NIGHT, monitoring=monitoring)

    verdict = check(GUARDRAILS, NIGHT, monitoring=monitoring)

    assert verdict.phase is Phase.RUNNING, verdict.reason  # neither a rollback nor a pass
    assert verdict.metric == UNATTRIBUTED and verdict.statistic == 5
    assert "no error rate" in verdict.reason and "100" not in verdict.reason
    assert [a.kind for a in verdict.alerts] == ["unattributed_5xx"]  # a person hears of them
    # A stage does not pass on them whatever the judge says.
    assert assess(Passes(), GUARDRAILS, NIGHT, stage_over=True).phase is Phase.RUNNING


def test_the_guarded_versions_targets_tell_whose_the_unattributed_5xx_are():
    # It has healthy targets: a request sent to it would have been counted, so none were.
    theirs = check(GUARDRAILS, NIGHT, monitoring=True, healthy_targets=2)
    assert theirs.phase is Phase.RUNNING and "not the promoted version's" in theirs.reason
    # It has none: they are its refused requests, and a release without a target is down.
    dead = check(GUARDRAILS, NIGHT, monitoring=True, healthy_targets=0)
    assert dead.phase is Phase.FAILED and "has no healthy target" in dead.reason, dead.reason
    stage = assess(Passes(), GUARDRAILS, NIGHT, stage_over=False, healthy_targets=0)
    assert stage.phase is Phase.FAILED and "the canary has no healthy target" in stage.reason
    # Below min_errors the guardrail does not act alone, as for any error count, nor alert.
    few = observation(minute(0, None, None, unserved=4))
    quiet = check(GUARDRAILS, few, monitoring=True, healthy_targets=0)
    assert quiet.phase is Phase.RUNNING and quiet.alerts == ()


def test_load_balancer_5xx_among_counted_requests_still_make_a_rate():
    # Any request count in the window gives them a rate: a version losing its targets mid-window
    # is still rolled back on it (see the first test), and unattributed() does not ask for targets.
    obs = observation(minute(0, None, 20), minute(1, None, None, unserved=5))
    assert not unattributed(obs, monitoring=True)
    assert check(GUARDRAILS, obs, monitoring=True).phase is Phase.FAILED
    stage = observation(minute(0, 1140, None), minute(1, None, None, unserved=5))
    assert not unattributed(stage, monitoring=False)


@pytest.mark.parametrize("monitoring", [True, False], ids=["monitoring", "stage"])
def test_a_guardrail_over_no_canary_requests_says_no_rate_was_measured(monitoring):
    """A request count of 0 (CloudWatch publishes RequestCount 0 for an idle minute) gave "canary
    error rate 0.00% within the 5% guardrail": a healthy measurement of nothing."""
    verdict = check_totals(GUARDRAILS, VersionSample(requests=0), 0 if monitoring else 1_000, monitoring=monitoring)
    assert verdict.phase is Phase.SUCCESSFUL
    assert "%" not in verdict.reason.replace("1% guardrail", "").replace("5% guardrail", ""), verdict.reason
    assert "no requests, no rate measured" in verdict.reason, verdict.reason


def test_load_balancer_5xx_beside_no_canary_requests_do_not_give_the_canary_a_rate():
    """During a stage, 5xx of the load balancer's own that may be the canary's, and no canary
    request counted: "canary error rate 0.00%; with the ... that may be the canary's" read as a
    measured canary."""
    verdict = check_totals(GUARDRAILS, VersionSample(requests=0), 2_000, unserved=4, background=0.0, monitoring=False)
    assert verdict.phase is Phase.RUNNING, verdict
    assert "canary error rate 0.00%" not in verdict.reason, verdict.reason
    assert "no requests, no rate measured" in verdict.reason, verdict.reason
