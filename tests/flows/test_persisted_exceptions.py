"""A failed run's exception, persisted by Prefect and read back from storage, is rollway's own.

With result persistence on (``persist_result=True``, or PREFECT_RESULTS_PERSIST_BY_DEFAULT) Prefect
pickles the exception a flow failed with into its result storage; a hook or the UI in another
process reads it from there. Before ``rollway.errors_pickle`` the read raised TypeError for
exceptions whose constructor takes more than a message, and the hooks took the run's failure for an
unknown one (flows/hooks.py ``_exception`` answers None).
"""

from __future__ import annotations

import pytest
from prefect import flow
from prefect._internal.result_records import ResultRecordMetadata
from prefect.client.orchestration import get_client

from rollway.finalize import FinalizeIncomplete
from rollway.ledger import RollbackUnrecorded
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.report import RollbackResult

RESULT = RollbackResult(
    reason="error rate 4.1% > 2%", weights=Weights(stable=100, canary=0), stable_desired=2, canary_desired=0,
    canary_task_definition="arn:aws:ecs:us-east-2:123456789012:task-definition/edit:42",
    steps=("weights 100/0 verified", "canary scaled to 0"),
)
ERRORS = {
    "unrecorded": RollbackUnrecorded("edit-canary", RESULT, "the end of the rollback (ProvisionedThroughputExceeded)",
                                     rollout_id="20261201-0312-ab12", phase=RolloutPhase.ROLLING_BACK),
    "finalize": FinalizeIncomplete("scale the old stable service to 0", "ServiceNotStable: not stable after 600s",
                                   "The canary carries all the traffic.", unrecorded=True),
}


@flow(persist_result=True)
def fails_with(which: str) -> None:
    raise ERRORS[which]


@pytest.mark.parametrize("which", sorted(ERRORS))
def test_a_persisted_failure_reads_back_as_the_named_exception_with_its_fields(which: str) -> None:
    sent = ERRORS[which]
    state = fails_with(which, return_state=True)
    assert state.is_failed()
    # The state as another process has it: from the API, its result only a pointer to storage.
    with get_client(sync_client=True) as client:
        stored = client.read_flow_run(state.state_details.flow_run_id).state
    assert isinstance(stored.data, ResultRecordMetadata)

    got = stored.result(raise_on_failure=False)

    assert type(got) is type(sent) and got is not sent
    assert str(got) == str(sent)
    assert vars(got) == vars(sent)
