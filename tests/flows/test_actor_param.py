"""Every flow's ``actor`` is a name on one line with no control characters, as an approver's is:
it goes as typed into the ledger, whose entries the notices ("finalized by ..."), the summaries and
the run's log are read from. A line break wrote a line of its own in a notice, and an escape
sequence acted on the terminal of whoever read the log; `--approver` and the approval form refused
both already. The refusal names the ledger: the notices and the log escape a name now."""

from __future__ import annotations

import re

import pytest
from prefect.exceptions import ParameterTypeError
from prefect.utilities.callables import parameter_schema

from flows.canary import canary
from flows.finalize import finalize
from flows.flags import set_flags
from flows.progressive import advance_phase, progressive_rollout
from flows.rollback import rollback

SPEC = {"image": "123456789012.dkr.ecr.us-west-2.amazonaws.com/webordinary:2.0.0",
        "stages": [{"weight": 5}, {"weight": 100}]}
FLOWS = [
    pytest.param(finalize, {}, id="finalize"),
    pytest.param(rollback, {"reason": "5xx above the threshold"}, id="rollback"),
    pytest.param(canary, {"spec": SPEC}, id="canary"),
    pytest.param(progressive_rollout, {"spec": SPEC}, id="progressive_rollout"),
    pytest.param(advance_phase, {}, id="advance_phase"),
    pytest.param(set_flags, {"changes": [{"feature": "use_sqs_architecture", "enabled": True}]}, id="set-flags"),
]
FORGED = ["carol\x1b]0;pwned\x07", "alice\nRollout r2, finalized by bob", "bob\r\x1b[2K", "eve\u2028admin", "a\tb"]


@pytest.mark.parametrize(("run", "parameters"), FLOWS)
@pytest.mark.parametrize("actor", FORGED)
def test_an_actor_with_a_control_character_is_a_parameter_error(run, parameters, actor):
    run.validate_parameters({**parameters, "actor": "alice"})  # the other parameters fit
    with pytest.raises(ParameterTypeError, match="actor must be a name on one line, with no control characters") \
            as refused:
        run.validate_parameters({**parameters, "actor": actor})
    # Where the name goes as typed: the notices and the run's log show a name escaped.
    said = " ".join(str(refused.value).split())
    assert "the ledger keeps it as typed" in said and "notices" not in said and "run's log" not in said, said


@pytest.mark.parametrize(("run", "parameters"), FLOWS)
def test_an_actor_is_recorded_without_a_trailing_line_break_as_an_approver_is(run, parameters):
    assert run.validate_parameters({**parameters, "actor": " alice\n"})["actor"] == "alice"


@pytest.mark.parametrize(("run", "parameters"), FLOWS)
def test_the_deployment_form_refuses_an_actor_with_a_control_character_as_it_is_typed(run, parameters):
    # The form's pattern, as the UI and the API read it (the API with Python's re.search).
    pattern = parameter_schema(run.fn).model_dump()["properties"]["actor"]["pattern"]
    assert re.search(pattern, "alice") and re.search(pattern, "Alice O'Neil (on call)")
    assert not any(re.search(pattern, actor) for actor in [*FORGED, "   "]), pattern
