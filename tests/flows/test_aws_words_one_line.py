"""AWS's words in a flow run's failure, on one line and escaped, whichever call they came from.

An endpoint in front of AWS (a proxy, an emulator) can answer an error whose message holds a line
break and an escape sequence, as it echoes what it was sent. A ClientError that no adapter wraps
(the cleanup's read of the task family's revisions, here) carried that text as it came into the
failed run's state message (Prefect's "Flow run encountered an exception: ..."), its log and its
artifact: a line of its own in each, and an escape sequence that coloured and cleared the
terminal of whoever read it. Every client of a run makes AWS's message one line as it is answered
(blocks/credentials.py), so every flow's failure says it so.
"""

from __future__ import annotations

import json

from flows.cleanup import cleanup
from tests.flows.moto_env import account_blocks
from tests.flows.test_cleanup_flow import summary
from tests.flows.test_read_back_bounds import in_front_of

SAID = "family web-editor\n\x1b[31mis not readable\r\n\x1b[2J here"
ESCAPED = "family web-editor \\x1b[31mis not readable \\x1b[2J here"


def _refusing_the_family_read(operation: str):
    """ECS's ListTaskDefinitions refused with SAID; every other call passed on to the embedded AWS."""
    if operation != "ListTaskDefinitions":
        return None
    body = json.dumps({"__type": "ClientException", "message": SAID}).encode()
    return 400, {"Content-Type": "application/x-amz-json-1.1"}, body


def test_an_aws_error_with_a_line_break_and_an_escape_sequence_is_one_escaped_line_where_people_read_it(
        aws, monkeypatch, caplog):
    with in_front_of(aws.endpoint_url, _refusing_the_family_read) as ecs:
        blocks = account_blocks(aws, monkeypatch, "one-line", ECS=ecs)
        state = cleanup(old_image_tags=["1.0.0"], dry_run=True, targets_block=blocks, aws_credentials_block=blocks,
                        return_state=True)

    assert state.is_failed(), state
    # The state message Prefect records, which the UI, `rollway status` and a hook's page quote.
    assert ESCAPED in state.message and "\n" not in state.message and "\x1b" not in state.message, state.message
    # The run's log: each record quoting AWS's words (Prefect's task retries and the failure, as
    # the error's repr) holds them on one line, and the traceback ends in them escaped.
    quoting = [record.getMessage() for record in caplog.records if "is not readable" in record.getMessage()]
    assert quoting, caplog.text
    for line in quoting:
        assert "\n" not in line and "\x1b" not in line, line
    assert ESCAPED in caplog.text and "\x1b" not in caplog.text and "\r" not in caplog.text
    # The run's artifact, which says what stopped it.
    text = summary(state)
    assert ESCAPED in text and "\x1b" not in text, text
