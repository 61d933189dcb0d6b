"""Which failures the container flow's read tasks try again."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from rollway.aws.errors import TargetNotFound
from tasks.container import _transient


class Failed:
    """A task run's final state whose result raises ``error``."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def result(self):
        raise self.error


def client_error(code: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": "no"}}, "GetAuthorizationToken")


@pytest.mark.parametrize(("error", "again"), [
    (client_error("ThrottlingException"), True),
    (client_error("ServiceUnavailable"), True),
    (ConnectionError("reset"), True),
    (client_error("AccessDeniedException"), False),  # a role without ecr:GetAuthorizationToken
    (client_error("AccessDenied"), False),
    (client_error("UnrecognizedClientException"), False),
    (TargetNotFound("ECR repository", "webordinary/edit-container"), False),
])
def test_only_failures_a_second_ask_could_get_past_are_tried_again(error, again):
    assert _transient(None, None, Failed(error)) is again
