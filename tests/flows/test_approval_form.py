"""The approval form the Prefect UI renders: stored through Prefect's public RunInput API, the
same schema and description ``pause_flow_run(wait_for_input=...)`` stores, on the test harness."""

from __future__ import annotations

import ast
import json
from pathlib import Path

from prefect.client.orchestration import get_client
from prefect.input import keyset_from_base_key

import flows.approvals
from flows.approvals import NAME_PATTERN, ApprovalInput
from rollway.cli.ops import resume
from tests.flows.test_answer_not_taken import paused_with_its_form


def test_the_paused_run_stores_the_form_prefect_itself_would_store():
    thread, outcome, run = paused_with_its_form(timeout=120)
    keyset = run.state.state_details.run_input_keyset
    reference = keyset_from_base_key("reference-form")
    # What Prefect's own pause stores for this form, on the same run under another key.
    ApprovalInput.with_initial_data(description="d", action="approve").save(reference, flow_run_id=run.id)
    with get_client(sync_client=True) as client:
        stored = json.loads(client.read_flow_run_input(run.id, keyset["schema"]))
        expected = json.loads(client.read_flow_run_input(run.id, reference["schema"]))
        description = json.loads(client.read_flow_run_input(run.id, keyset["description"]))
    resume(run.id, {"action": "approve", "approver": "dana", "comment": "ok"}, paused=run.state)
    thread.join(90)
    assert outcome == ["approve by dana"], (outcome, thread.raised)
    # The UI builds the form from this schema: the initial answer, the select, the name's pattern.
    assert stored == expected
    assert stored["properties"]["action"]["default"] == "approve"
    assert stored["properties"]["action"]["enum"] == ["approve", "reject", "hold"]
    assert stored["properties"]["approver"]["pattern"] == NAME_PATTERN
    assert description.startswith("## rollway: approval pause\n\nsummary")


def test_the_approvals_module_uses_no_private_prefect_module():
    """``prefect._internal`` may change in any Prefect release without notice."""
    tree = ast.parse(Path(flows.approvals.__file__).read_text())
    imported = [node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module] + [
        alias.name for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names]
    assert not [name for name in imported if "._" in f".{name}" and "_internal" in name], imported
