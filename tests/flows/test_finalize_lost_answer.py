"""finalize's move of the traffic to stable (flows/finalize.py, through set_and_verify) whose
ModifyRule answer is lost reads the weights back, on the embedded AWS: when the move landed, the
finalize completes. It used to fail the finalize over an answer that never came."""
from __future__ import annotations

import logging
from functools import partial

from botocore.exceptions import ReadTimeoutError

from tests.botocore_events import on_operation
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import ALL_STABLE, finalize_on, promote_by_hand

hooked = partial(on_operation, operation="ModifyRule")


def test_a_finalize_whose_traffic_move_answer_was_lost_completes(aws, watch_calls, caplog):
    env, release, _ = promote_by_hand(aws, "start", "promote", "decommission")
    elbv2 = aws.get_client("elbv2")

    def lose_answer(**_):  # ModifyRule went through on moto; its answer never arrives
        raise ReadTimeoutError(endpoint_url=aws.endpoint_url)

    calls = watch_calls(elbv2)
    with hooked(elbv2, "after-call", lose_answer), caplog.at_level(logging.INFO):
        result = finalize_on(env)
    assert result.outcome == "finalized" and result.weights == ALL_STABLE
    assert read_back(aws)[0] == ALL_STABLE
    assert calls.count("ModifyRule") == 1, calls  # read back, not sent again
    # Named as what it is: "the shift" was a canary stage's word, and finalize shifts no stage.
    said = [r.getMessage() for r in caplog.records if "landed although its answer was lost" in r.getMessage()]
    assert said == [f"finalize's move of the traffic to {ALL_STABLE} landed although its answer was lost; going on"], said
