"""unmeasured_slow: a pass on slow requests the canary's application never published is no pass."""

from __future__ import annotations

import pytest

from rollway.latency_unpublished import unmeasured_slow
from rollway.model import Interval, Verdict, VersionSample
from rollway.phases import Phase
from rollway.spec import Analysis

PASS = Verdict(phase=Phase.SUCCESSFUL, reason="canary slow requests 0/3,000 (0.00%): pass")
PUBLISHED = VersionSample(requests=1000, slow=0, latency_p99_ms=480.0)
SILENT = VersionSample(requests=1000)


def periods(baseline, canary, n=3):
    return [Interval(t=60.0 * (k + 1), baseline=baseline, canary=canary) for k in range(n)]


@pytest.mark.parametrize("intervals, history, metrics, stage_over, phase", [
    # The canary published nothing while the stable service did: not a pass, and a person decides at the end.
    (periods(PUBLISHED, SILENT), (), ("errors", "slow"), False, Phase.RUNNING),
    (periods(PUBLISHED, SILENT), (), ("errors", "slow"), True, Phase.INCONCLUSIVE),
    # At 100 % the stable version serves nothing: its periods before the stage show its metrics.
    (periods(None, SILENT), periods(PUBLISHED, None), ("errors", "slow"), True, Phase.INCONCLUSIVE),
    # One slow request counted, or one p99, is a published metric.
    (periods(PUBLISHED, VersionSample(requests=1000, slow=1)), (), ("errors", "slow"), True, Phase.SUCCESSFUL),
    (periods(PUBLISHED, PUBLISHED), (), ("errors", "slow"), True, Phase.SUCCESSFUL),
    # Slow requests not judged: nothing stands on them.
    (periods(PUBLISHED, SILENT), (), ("errors",), True, Phase.SUCCESSFUL),
    # Neither version publishes (the rollout's start warns of it): left as the judge said.
    (periods(SILENT, SILENT), periods(SILENT, None), ("errors", "slow"), True, Phase.SUCCESSFUL),
])
def test_a_pass_on_unpublished_slow_counts(intervals, history, metrics, stage_over, phase):
    verdict = unmeasured_slow(PASS, Analysis(metrics=metrics), intervals, history, stage_over=stage_over)
    assert verdict.phase is phase, verdict.reason
    if phase is not Phase.SUCCESSFUL:
        assert verdict.reason.startswith(PASS.reason) and "unmeasured, not 0" in verdict.reason
        assert "3,000 requests" in verdict.reason, verdict.reason


@pytest.mark.parametrize("phase", [Phase.RUNNING, Phase.INCONCLUSIVE, Phase.FAILED, Phase.ERROR])
def test_a_verdict_that_does_not_pass_is_left_alone(phase):
    verdict = PASS.model_copy(update={"phase": phase})
    assert unmeasured_slow(verdict, Analysis(), periods(PUBLISHED, SILENT), (), stage_over=True) == verdict


# An application that publishes SlowRequestCount only when it is above 0 (EMF, statsd) and no p99:
# the stable service counts a few slow requests, a healthy canary at 5 % counts none.
SLOW_ONLY = VersionSample(requests=19_000, slow=2)
QUIET = VersionSample(requests=1_000)


@pytest.mark.parametrize("canary, n, phase", [
    # At the stable service's rate (2 in 19,000) a canary serving 3,000 requests counts ~0.3: none is no sign.
    (QUIET, 3, Phase.SUCCESSFUL),
    # Serving 100,000, it would have counted ~10 at that rate: none at all is a publisher that does not publish.
    (VersionSample(requests=100_000), 1, Phase.INCONCLUSIVE),
])
def test_a_stable_service_publishing_slow_counts_alone_pauses_only_a_canary_that_should_have_counted_some(
        canary, n, phase):
    verdict = unmeasured_slow(PASS, Analysis(), periods(SLOW_ONLY, canary, n), (), stage_over=True)
    assert verdict.phase is phase, verdict.reason
