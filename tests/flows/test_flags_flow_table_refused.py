"""A set-flags run on a flags table DynamoDB will not serve: named as `rollway flags set` names it."""

from __future__ import annotations

import logging
from contextlib import nullcontext

import pytest
from botocore.exceptions import ClientError

from flows.flags import set_flags
from rollway.flag_binding import FlagChange
from rollway.flags import FlagStoreUnavailable
from tests.botocore_events import on_operation
from tests.flows.test_flags_flow import CREDENTIALS, SQS, dynamo, flags_summary  # noqa: F401 - the fixture

ASKED: list[str] = []


def refusing_put(aws):
    """PutItem refused as AWS refuses a role without dynamodb:PutItem on the table."""
    t = aws.targets

    def refuse(**_):
        ASKED.append("PutItem")
        raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": (
            "User: arn:aws:iam::123456789012:user/gina is not authorized to perform: dynamodb:PutItem on resource: "
            f"arn:aws:dynamodb:{t.region}:123456789012:table/{t.flags_table}")}}, "PutItem")

    return on_operation(aws.get_client("dynamodb"), "before-parameter-build", refuse, operation="PutItem")


@pytest.mark.parametrize("table", ["missing", "denied"])
def test_a_set_flags_run_on_a_table_it_cannot_use_names_it_and_what_to_do(aws, dynamo, caplog, monkeypatch, table):
    """The run failed on DynamoDB's words ("feature flag table 'webordinary-feature-flags':
    ResourceNotFoundException: Requested resource not found"), naming neither the region nor what to
    do, under the tracebacks of the task and the flow, where `rollway flags set` names both: the
    kill switch thrown from the UI read as a crash of rollway."""
    t = aws.targets
    ASKED.clear()
    # The run's clients are the embedded account's, so the refusal can be put on them.
    monkeypatch.setattr("flows.flags.load_clients", lambda targets_block, credentials_block: (t, aws.get_client))
    if table == "missing":
        aws.get_client("dynamodb").delete_table(TableName=t.flags_table)
    with caplog.at_level(logging.INFO), (refusing_put(aws) if table == "denied" else nullcontext()):
        state = set_flags(changes=[FlagChange(feature=SQS, enabled=True, percentage=5)], actor="alice",
                          aws_credentials_block=CREDENTIALS, return_state=True)

    assert state.is_failed()
    with pytest.raises(FlagStoreUnavailable) as refused:
        state.result()
    message = str(refused.value)
    named = f"the feature flag table {t.flags_table} (region {t.region})"
    if table == "missing":
        assert message.startswith(f"{named} does not exist: deploy the flags table's infrastructure "
                                  "(deploy_infrastructure), or name the table the feature flags are kept in as "
                                  "flags_table in the RollwayTargets block (DynamoDB "), message
    else:
        assert message.startswith(f"{named}: AWS refused dynamodb:PutItem (AccessDeniedException: "), message
        assert "statement Flags: add that statement" in message, message
        assert ASKED == ["PutItem"], "a refusal is refused again: not retried"
    assert message in flags_summary(state)
    assert "Traceback" not in caplog.text, caplog.text
