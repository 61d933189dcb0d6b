"""The set-flags flow's ``actor`` is the bounded ``Actor`` of every other flow: Prefect refuses a
blank one before the run starts, and a name is recorded without surrounding spaces."""

from __future__ import annotations

import pytest
from prefect.exceptions import ParameterTypeError

from flows.flags import set_flags
from rollway.aws.flags import DynamoFlagStore
from rollway.flag_binding import FlagChange
from tests.flows.test_flags_flow import CREDENTIALS, SQS, dynamo  # noqa: F401 - the fixture


@pytest.mark.parametrize("actor", ["", "   "])
def test_a_blank_actor_is_a_parameter_error(actor):
    with pytest.raises(ParameterTypeError, match="actor"):
        set_flags.validate_parameters({"changes": [{"feature": SQS, "enabled": True}], "actor": actor})


def test_the_actor_is_recorded_without_surrounding_spaces(dynamo: DynamoFlagStore):  # noqa: F811
    set_flags(changes=[FlagChange(feature=SQS, enabled=True, percentage=5)], actor=" alice ",
              aws_credentials_block=CREDENTIALS)
    assert dynamo.get(SQS).updated_by == "alice"
    assert dynamo.audit(SQS)[0].actor == "alice"
