"""The judge's verdict as the ledger keeps it, for the reports and `rollway status` to quote."""

from __future__ import annotations

import re

from rollway.fakes import FakeLedger
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment
from tests.flows.test_artifacts import IMAGE, rollout


def test_a_passed_stage_is_recorded_with_its_request_counts_in_thousands():
    # The verdict's own sentence separates thousands; the counts after it, in the same line of a
    # report, did not ("(canary 20864 req, baseline 396416 req)").
    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (10, 100)], monitor_seconds=0)
    assert rollout(env, spec).outcome == "promoted"
    record = env.ledger.get(env.targets.canary_service)
    verdicts = [t.verdict for t in record.history if t.kind == "verdict"]
    assert verdicts, record.history
    for verdict in verdicts:
        counts = re.search(r"\(canary ([\d,]+) req, baseline ([\d,]+) req\)$", verdict)
        assert counts, verdict
        canary, baseline = (int(figure.replace(",", "")) for figure in counts.groups())
        assert canary >= 1000 and counts.groups() == (f"{canary:,}", f"{baseline:,}"), verdict
