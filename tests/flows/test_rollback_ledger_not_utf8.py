"""A ledgered rollback whose failed step's text holds a byte that is not UTF-8 (a lone surrogate:
a role's name AWS echoed in its refusal, decoded with surrogateescape).

The rollback put the traffic back, then wrote its stop to the ledger: DynamoDB's request could not
be encoded, so the rollback failed on PydanticSerializationError instead of RollbackIncomplete, and
the hook's rollback the same way, paging "run `rollway abort` by hand" over traffic already back.
The flows reading the ledger in their own body are held to ending Failed on such a text too.
"""
from __future__ import annotations

import pytest

from rollway.failure_words import writable
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from tests.flows.moto_env import saved_blocks
from tests.flows.test_canary_moto import read_back
from tests.flows.test_decommission_page import pages as inbox_pages
from tests.flows.test_hook_after_incomplete_rollback import DENIED_NOT_UTF8, progressive_refused_on_aws
from tests.flows.test_hooks_moto import NOT_UTF8, ledger_reads_refused, log_reported_writable  # noqa: F401 - a fixture


def test_a_failed_step_whose_text_is_not_utf8_is_written_to_the_ledger_on_aws(aws, monkeypatch,
                                                                              log_reported_writable):
    env, state, refused, url = progressive_refused_on_aws(aws, monkeypatch, pages_refused=0, denied=DENIED_NOT_UTF8)

    assert state.is_failed(), state
    assert refused.count("UpdateService") == 2, refused  # the run's rollback, then the hook's
    pages = [(subject, body) for subject, body in inbox_pages(aws, url) if subject.startswith("Rollback")]
    assert len(pages) == 1, pages
    subject, body = pages[0]
    said = " ".join(body.split())
    assert "FAILED" in subject + body and writable(DENIED_NOT_UTF8) in said, body
    assert "by hand" not in said, body  # the traffic is back: only the failed step is left
    record = env.ledger.get(aws.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLING_BACK  # open: `rollway abort` finishes it once the role allows
    stopped = " ".join(t.comment or "" for t in record.history if t.kind == "rollback-stopped")
    assert writable(DENIED_NOT_UTF8) in stopped, record.history  # the step to finish, as AWS said it
    weights, _stable, _canary = read_back(aws)
    assert weights == Weights(stable=100, canary=0)


@pytest.mark.parametrize("flow_name", ["rollback", "finalize", "monitor", "cleanup"])
def test_a_ledger_read_whose_text_is_not_utf8_ends_the_run_failed(aws, monkeypatch, flow_name, log_reported_writable):
    """The flows that read the ledger in their own body, as `rollway abort`, `finalize`, `monitor`
    and `cleanup` run them: a refusal holding a lone surrogate must end the run Failed, its text
    escaped, not crash it with a state Prefect could not record."""
    from flows.cleanup import cleanup
    from flows.finalize import finalize
    from flows.monitor import monitor
    from flows.rollback import rollback

    blocks = saved_blocks(aws)
    refused = ledger_reads_refused(monkeypatch, f"table {NOT_UTF8}-rollouts cannot be read")
    given = {"targets_block": blocks, "aws_credentials_block": blocks, "return_state": True}
    spec = RolloutSpec(image=f"{aws.targets.ecr_repository}:2.0.0", stages=[Stage(weight=5), Stage(weight=100)])
    runs = {
        "rollback": lambda: rollback(reason="by hand", **given),
        "finalize": lambda: finalize(**given),
        "monitor": lambda: monitor(spec=spec, **given),
        "cleanup": lambda: cleanup(old_image_tags=["1.0.0"], dry_run=True, **given),
    }
    unrecorded = None
    try:
        state = runs[flow_name]()
    except UnicodeEncodeError as err:
        unrecorded = writable(str(err))

    assert unrecorded is None, f"Prefect could not record the run's state: {unrecorded}"
    assert refused, "the ledger was not read"
    assert state.is_failed(), state
    assert "table web\\udcff-rollouts cannot be read" in state.message, state.message
