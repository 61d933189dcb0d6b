"""Judge v1 (the seed's thresholds), the absolute guardrails, and how assess() combines them."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rollway.judge import assess, make_judge, rate_beside, rate_percent, setting_percent
from rollway.judge.guardrails import check
from rollway.judge.threshold import ThresholdJudge
from rollway.model import Alert, Interval, Observation, QueueDepth, Verdict, VersionSample
from rollway.phases import Phase
from rollway.spec import Analysis, Guardrails

GUARDRAILS = Guardrails()
THRESHOLD = Analysis(judge="threshold", min_requests=50)


def intervals(*canary: tuple[int, int], baseline: tuple[int, int] = (1140, 1)) -> list[Interval]:
    """One 60-s interval per (requests, errors) of the canary, against a steady baseline."""
    return [
        Interval(
            t=60.0 * (i + 1),
            canary=VersionSample(requests=r, errors=e),
            baseline=VersionSample(requests=baseline[0], errors=baseline[1]),
        )
        for i, (r, e) in enumerate(canary)
    ]


THRESHOLD_CASES = [
    # (name, canary (requests, errors) per interval, stage_over, phase, reason fragment)
    ("over 1% fails at once", [(60, 0), (60, 2)], False, Phase.FAILED, "is over 1%"),
    ("over 1% fails at the end too", [(100, 2)], True, Phase.FAILED, "(2/100)"),
    ("exactly 1% is within", [(100, 1)], True, Phase.SUCCESSFUL, "stayed within 1%"),
    ("healthy mid-stage keeps baking", [(600, 1)], False, Phase.RUNNING, "baking"),
    ("healthy at the end passes", [(600, 1), (600, 0)], True, Phase.SUCCESSFUL, "0.083% (1/1,200)"),
    ("too few requests at the end is inconclusive", [(20, 0), (20, 0)], True, Phase.INCONCLUSIVE,
     "only 40 canary requests"),
    ("counted zero canary traffic at the end is inconclusive", [(0, 0), (0, 0)], True, Phase.INCONCLUSIVE,
     "only 0 canary requests"),
    # The stage table reads "no data" for it: "only 0 canary requests" beside it was a count nobody made.
    ("no canary count at the end is inconclusive", [], True, Phase.INCONCLUSIVE,
     "no period had a canary request count by the end of the stage (no data, not 0 requests; need 50)"),
]


@pytest.mark.parametrize("name,canary,stage_over,phase,fragment", THRESHOLD_CASES, ids=[c[0] for c in THRESHOLD_CASES])
def test_threshold_judge(name, canary, stage_over, phase, fragment):
    verdict = ThresholdJudge(THRESHOLD, GUARDRAILS).evaluate(intervals(*canary), stage_over=stage_over)
    assert verdict.phase is phase
    assert fragment in verdict.reason
    assert verdict.metric == "error_rate"
    assert verdict.canary_requests == sum(r for r, _ in canary)


def test_threshold_judge_says_no_data_for_a_canary_no_period_counted_as_the_stage_table_does():
    quiet = [Interval(t=60.0 * i, baseline=VersionSample(requests=1140)) for i in (1, 2, 3)]
    verdict = ThresholdJudge(THRESHOLD, GUARDRAILS).evaluate(quiet, stage_over=True)
    assert verdict.phase is Phase.INCONCLUSIVE and "0 canary requests" not in verdict.reason, verdict.reason
    assert "no period had a canary request count" in verdict.reason, verdict.reason


def test_threshold_judge_ignores_missing_canary_samples():
    data = intervals((600, 1)) + [Interval(t=120.0, baseline=VersionSample(requests=1140))]
    verdict = ThresholdJudge(THRESHOLD, GUARDRAILS).evaluate(data, stage_over=True)
    assert (verdict.phase, verdict.canary_requests, verdict.decided_at_t) == (Phase.SUCCESSFUL, 600, 120.0)


def observation(canary: tuple[int, int], *, latency_ms: float | None = None, dlq: int = 0, dlq_before: int = 0,
                error: str | None = None) -> Observation:
    """``dlq``: messages that arrived in the dead-letter queue since the start, on top of ``dlq_before``."""
    sample = VersionSample(requests=canary[0], errors=canary[1], latency_avg_ms=latency_ms)
    depth = QueueDepth(queue="input-dlq", first=dlq_before, deepest=dlq_before + dlq)
    return Observation(
        start=0, end=60, dlq_messages=depth.deepest, error=error, dead_letters=(depth,) if depth.deepest else (),
        intervals=(Interval(t=60, canary=sample, baseline=VersionSample(requests=1140, errors=1)),),
    )


GUARDRAIL_CASES = [
    # (name, canary (requests, errors), monitoring, latency ms, dlq, phase, alerts)
    ("five errors over 1% fail", (100, 5), False, None, 0, Phase.FAILED, 0),
    ("a few errors early in a stage are not a rate", (100, 4), False, None, 0, Phase.SUCCESSFUL, 0),
    ("a single error is not a rate", (10, 1), False, None, 0, Phase.SUCCESSFUL, 0),
    ("at the limit is fine", (200, 2), False, None, 0, Phase.SUCCESSFUL, 0),
    ("monitoring allows up to 5%", (100, 4), True, None, 0, Phase.SUCCESSFUL, 0),
    ("monitoring fails over 5%", (100, 6), True, None, 0, Phase.FAILED, 0),
    ("dead letters alert without failing", (600, 0), False, None, 3, Phase.SUCCESSFUL, 1),
    ("slow responses alert without failing", (600, 0), False, 12_000.0, 0, Phase.SUCCESSFUL, 1),
    ("no traffic is no failure", (0, 0), False, None, 0, Phase.SUCCESSFUL, 0),
]


@pytest.mark.parametrize("name,canary,monitoring,latency,dlq,phase,alerts", GUARDRAIL_CASES,
                         ids=[c[0] for c in GUARDRAIL_CASES])
def test_guardrails(name, canary, monitoring, latency, dlq, phase, alerts):
    verdict = check(GUARDRAILS, observation(canary, latency_ms=latency, dlq=dlq), monitoring=monitoring)
    assert verdict.phase is phase, verdict.reason
    assert len(verdict.alerts) == alerts
    assert "guardrail" in verdict.reason


@pytest.mark.parametrize("monitoring,since", [(False, "since the stage began"), (True, "since monitoring began")])
def test_dead_letters_alert_on_what_arrived_not_on_what_the_queue_held_before(monitoring, since):
    """A DLQ that held 7 messages before the rollout alerted in every stage and every window,
    saying nothing of whether any came from this release."""
    held = check(GUARDRAILS, observation((600, 0), dlq_before=7), monitoring=monitoring)
    assert held.alerts == ()
    [alert] = check(GUARDRAILS, observation((600, 0), dlq_before=7, dlq=2), monitoring=monitoring).alerts
    assert alert.message.startswith(f"2 new message(s) in the dead-letter queues {since} (input-dlq: 7 → 9;")
    assert "held before are not counted" in alert.message


def test_dead_letters_of_a_queue_with_no_depth_known_before_are_counted_apart_from_new_ones():
    """One queue's depth before is known (7 → 9), another's is not (SQS published nothing of it for
    hours): its 41 are said as held, not as new, beside the 2 that are."""
    dead = (QueueDepth(queue="input-dlq", first=7, deepest=9), QueueDepth(queue="email-dlq", first=None, deepest=41))
    seen = Observation(start=0, end=120, intervals=observation((600, 0)).intervals, dead_letters=dead)
    [alert] = check(GUARDRAILS, seen, monitoring=False).alerts
    assert alert.message == (
        "2 new message(s) in the dead-letter queues since the stage began, and 41 message(s) (starting depth unknown) "
        "(input-dlq: 7 → 9, email-dlq: 41 (starting depth unknown); messages they held "
        "before are not counted; no CloudWatch reading of it from before the stage began: SQS publishes nothing for "
        "a queue idle for hours, so some may be older)"), alert.message
    assert alert.about == ("input-dlq", "email-dlq")


class FixedJudge:
    """A judge that always answers the same, to test how assess() combines."""

    def __init__(self, verdict: Verdict) -> None:
        self.verdict = verdict

    uses_history = False

    def evaluate(self, intervals, *, stage_over, history=()):
        return self.verdict


ASSESS_CASES = [
    # (name, judge phase, canary, dlq, expected phase, reason from)
    ("judge pass, guardrail fail: guardrail wins", Phase.SUCCESSFUL, (100, 5), 0, Phase.FAILED, "guardrail"),
    ("judge fail, guardrail fine: judge wins", Phase.FAILED, (600, 0), 0, Phase.FAILED, "judge"),
    ("both fine: judge's verdict with the guardrail's alerts", Phase.RUNNING, (600, 0), 2, Phase.RUNNING, "judge"),
    ("inconclusive outranks a guardrail pass", Phase.INCONCLUSIVE, (600, 0), 0, Phase.INCONCLUSIVE, "judge"),
]


@pytest.mark.parametrize("name,judge_phase,canary,dlq,phase,source", ASSESS_CASES, ids=[c[0] for c in ASSESS_CASES])
def test_assess_takes_the_worst(name, judge_phase, canary, dlq, phase, source):
    judge_alert = Alert(kind="response_time", message="judge alert")
    judge = FixedJudge(Verdict(phase=judge_phase, reason="judge says so", alerts=(judge_alert,)))
    verdict = assess(judge, GUARDRAILS, observation(canary, dlq=dlq), stage_over=False)
    assert verdict.phase is phase
    assert ("judge says so" in verdict.reason) is (source == "judge")
    assert judge_alert in verdict.alerts
    assert len(verdict.alerts) == 1 + (dlq > 0)


def test_assess_reports_unavailable_metrics_as_error():
    judge = FixedJudge(Verdict(phase=Phase.SUCCESSFUL, reason="never asked"))
    verdict = assess(judge, GUARDRAILS, observation((0, 0), error="throttled"), stage_over=False)
    assert verdict.phase is Phase.ERROR
    assert "throttled" in verdict.reason


def test_make_judge_rejects_an_unknown_kind():
    bogus = Analysis.model_construct(**{**Analysis().model_dump(), "judge": "psychic"})
    with pytest.raises(ValueError, match="psychic"):
        make_judge(bogus, GUARDRAILS)


@pytest.mark.parametrize("limit, canary, phase, stated", [
    # (guardrail, canary (requests, errors), phase, the guardrail as the reasons state it)
    (0.005, (1000, 7), Phase.FAILED, "0.5%"),
    (0.015, (1000, 16), Phase.FAILED, "1.5%"),
    (0.025, (1000, 20), Phase.SUCCESSFUL, "2.5%"),
])
def test_a_guardrail_reason_states_the_rate_it_was_judged_against(limit, canary, phase, stated):
    # Printed with no decimals, a 0.5 % guardrail read "0.70% is over the 0% guardrail" and a
    # 1.5 % one "1.60% is over the 2% guardrail": a rollback that contradicts its own reason.
    guardrails = Guardrails(canary_error_rate=limit)
    verdict = check(guardrails, Observation(start=0, end=60, intervals=tuple(intervals(canary))), monitoring=False)
    assert verdict.phase is phase and f"the {stated} guardrail" in verdict.reason
    threshold = ThresholdJudge(THRESHOLD, guardrails).evaluate(intervals(canary), stage_over=True)
    assert threshold.phase is phase and threshold.reason.endswith(f" {stated}")


def test_a_margin_or_slo_finer_than_a_hundredth_of_a_point_is_stated_as_set():
    # ".2%" turned a 0.025 % margin into "0.03%" and a 0.005 % SLO into "0.01%".
    two = make_judge(Analysis(margin=0.00025), GUARDRAILS).evaluate(intervals((600, 0)), stage_over=False)
    assert "or 0.025%" in two.reason
    one = make_judge(Analysis(mode="one-sample", slo_error_rate=0.00005), GUARDRAILS).evaluate(
        intervals((600, 0)), stage_over=False)
    assert "vs SLO 0.005%" in one.reason


def test_a_response_time_alert_shows_the_average_over_its_limit():
    # To one decimal a 10.04 s average read "10.0 s is over 10 s".
    slow = [Interval(t=60.0, canary=VersionSample(requests=100, errors=0, latency_avg_ms=10_040.0))]
    verdict = check(GUARDRAILS, Observation(start=0, end=60, intervals=tuple(slow)), monitoring=False)
    assert [a.message for a in verdict.alerts] == ["canary average response time 10.04 s is over 10 s"]


def test_evidence_just_short_of_its_bar_is_not_printed_as_the_bar():
    # "rollback evidence 200 of 200; observing" read as a rollback the judge had not made.
    from rollway.judge.sequential import _evidence_of

    assert [_evidence_of(v, 200.0) for v in (199.7, 199.99, 150.0, 200.0, 250.0)] == [
        "199.7", "199.99", "150", "200", "250"]
    assert _evidence_of(99.96, 100.0) == "99.96"


@pytest.mark.parametrize("monitoring,limit", [(False, "1%"), (True, "5%")])
def test_a_rate_over_the_guardrail_on_too_few_errors_is_not_called_within_it(monitoring, limit):
    """3 errors in 20 requests: too few to act on (min_errors 5), but "15.00% within the 5%
    guardrail", in every monitoring check's log line, was false."""
    verdict = check(GUARDRAILS, Observation(start=0, end=60, intervals=(
        Interval(t=60, canary=VersionSample(requests=20, errors=3), baseline=VersionSample(requests=1000)),)),
        monitoring=monitoring)
    assert verdict.phase is Phase.SUCCESSFUL  # unchanged: the guardrail acts from min_errors on
    assert verdict.reason == (f"canary error rate 15.00% (3/20) is over the {limit} guardrail on 3 error(s), fewer "
                              "than the 5 it acts on")


@pytest.mark.parametrize("canary, phase, guardrail, threshold", [
    # 1,001 errors in 100,000 read "1.00% ... is over the 1% guardrail", 999 "1.00% within" it.
    ((100_000, 1_001), Phase.FAILED, "canary error rate 1.001% (1,001/100,000) is over the 1% guardrail",
     "canary error rate 1.001% (1,001/100,000) is over 1%"),
    ((100_000, 999), Phase.SUCCESSFUL, "canary error rate 0.999% within the 1% guardrail",
     "canary error rate 0.999% (999/100,000) stayed within 1%"),
    ((100_000, 1_000), Phase.SUCCESSFUL, "canary error rate 1.00% within the 1% guardrail",
     "canary error rate 1.00% (1,000/100,000) stayed within 1%"),
])
def test_a_rate_beside_its_guardrail_never_reads_equal_to_it_when_it_is_not(canary, phase, guardrail, threshold):
    verdict = check(GUARDRAILS, Observation(start=0, end=60, intervals=tuple(intervals(canary))), monitoring=False)
    assert (verdict.phase, verdict.reason) == (phase, guardrail)
    judged = ThresholdJudge(THRESHOLD, GUARDRAILS).evaluate(intervals(canary), stage_over=True)
    assert (judged.phase, judged.reason) == (phase, threshold)


def _shown(text: str) -> Decimal:
    return Decimal(text.strip("<>%"))


@settings(max_examples=400, deadline=None)
@given(off=st.integers(-5, 5), requests=st.integers(1, 10**7),
       bar=st.sampled_from([0.00001, 0.0001, 0.0005, 0.001, 0.002, 0.005, 0.01, 0.0125, 0.05, 0.5]))
def test_a_displayed_rate_is_ordered_against_its_displayed_bar_as_the_rates_are(off, requests, bar):
    """"0.100%" beside a "0.10%" margin, for 0.0997 %: equal numbers, and a decision saying one is
    below the other. Rates a few events either side of the bar, where rounding meets it."""
    rate = min(max(round(bar * requests) + off, 0), requests) / requests
    shown, limit = rate_beside(rate, bar), setting_percent(bar)
    if shown.startswith("<"):
        assert rate < bar and _shown(shown) <= _shown(limit)
    else:
        assert (_shown(shown) > _shown(limit)) - (_shown(shown) < _shown(limit)) == (rate > bar) - (rate < bar)
    assert (rate == 0) == (_shown(shown) == 0)  # and never a non-zero rate printed as 0
    if shown != rate_percent(rate):  # short: one decimal fewer would read equal, or the wrong way
        fewer = _shown(f"{rate:.{len(shown.split('.')[1]) - 2}%}")
        assert fewer == 0 or (fewer > _shown(limit)) - (fewer < _shown(limit)) != (rate > bar) - (rate < bar)


def test_a_stage_with_no_canary_requests_yet_measured_no_rate():
    """"canary error rate 0.00% so far; baking" while the canary had counted no request."""
    verdict = ThresholdJudge(THRESHOLD, GUARDRAILS).evaluate(intervals((0, 0)), stage_over=False)
    assert verdict.phase is Phase.RUNNING
    assert "0.00%" not in verdict.reason and "no requests, no rate measured" in verdict.reason, verdict.reason
