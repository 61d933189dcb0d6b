"""The set-flags flow on a flag whose item was written outside rollway (``MalformedFlag``).

`rollway flags set` repairs such an item with a change that gives its unreadable settings, and a
disable always can (the README); the set-flags flow, the way to change a flag from the Prefect UI,
must do the same, and must still check every change before the first write.
"""

from __future__ import annotations

import pytest

from flows.flags import set_flags
from rollway.aws.flags import DynamoFlagStore
from rollway.flag_binding import FlagChange
from rollway.flags import FlagEvaluator, InvalidFlagInput
from tests.flows.test_flags_flow import CREDENTIALS, SQS, dynamo  # noqa: F401 - the fixture


def put_raw(aws, **attributes) -> None:
    """An item as the console or another tool writes it."""
    aws.get_client("dynamodb").put_item(TableName=aws.targets.flags_table, Item=attributes)


def test_the_flow_disables_a_malformed_flag_like_the_command_does(aws, dynamo: DynamoFlagStore):  # noqa: F811
    """The kill switch from the UI: the flow read every flag first, and a malformed item failed that
    read (retried as an outage, then the run failed), so the flag could not be turned off there."""
    put_raw(aws, feature={"S": "legacy"}, enabled={"S": "true"}, percentage={"N": "100"})
    assert FlagEvaluator(dynamo, on_unavailable="open").is_enabled("legacy", "user-1"), "served as on"

    updates = set_flags(changes=[FlagChange(feature="legacy", enabled=False, reason="kill switch")],
                        actor="oncall", aws_credentials_block=CREDENTIALS)

    assert [u.feature for u in updates] == ["legacy"] and updates[0].malformed is not None
    repaired = dynamo.get("legacy")
    assert (repaired.enabled, repaired.updated_by) == (False, "oncall")
    assert dynamo.audit("legacy")[0].reason == "kill switch"


def test_a_change_that_cannot_repair_a_malformed_flag_writes_nothing(aws, dynamo: DynamoFlagStore):  # noqa: F811
    """Checked with the others before the first write: the earlier change is not made alone."""
    put_raw(aws, feature={"S": "legacy"}, enabled={"BOOL": True}, percentage={"N": "150"})
    with pytest.raises(InvalidFlagInput, match="percentage"):
        set_flags(changes=[FlagChange(feature=SQS, enabled=True, percentage=5),
                           FlagChange(feature="legacy", enabled=True)],
                  actor="oncall", aws_credentials_block=CREDENTIALS)
    assert dynamo.get(SQS).version == 1, "nothing was written"


def test_the_flows_refusal_names_the_fields_of_its_form_not_command_line_options(aws, dynamo: DynamoFlagStore):  # noqa: F811
    """The flow's form is a list of changes with `enabled`, `percentage` and `salt`: the refusal told
    a person in the UI to give `--enabled or --no-enabled` and `--percentage`, which it has not."""
    put_raw(aws, feature={"S": "legacy"}, enabled={"S": "yes"}, percentage={"N": "150"})
    with pytest.raises(InvalidFlagInput) as refused:
        set_flags(changes=[FlagChange(feature="legacy", salt="fresh")], actor="oncall",
                  aws_credentials_block=CREDENTIALS)
    message = str(refused.value)
    assert "--" not in message, message
    # Nor the command to run instead: the repair is this form's change, given its settings.
    assert "rollway flags set" not in message, message
    assert "`enabled`" in message and "`percentage`" in message and "nothing was written" in message
