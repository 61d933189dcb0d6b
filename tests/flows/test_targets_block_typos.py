"""A Rollway Targets block is refused, not half-read, when a key in it is misspelt.

A block saved as {"stable_service": "checkout-service", "canary_servce": ..., "flag_table": ...}
used to load with Webordinary's canary service and flag table (Block allows any key, and the
unknown ones were dropped): one rollout mixed two services and wrote another team's flag table.
A legitimately saved block, whose document may carry Prefect's own keys, still loads.
"""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.actions import BlockDocumentCreate
from prefect.states import Failed
from pydantic import ValidationError

from blocks.register import save_blocks
from blocks.targets import RollwayTargets
from flows.env import AccountNotLoaded, load_targets
from flows.hooks import leave_alone
from rollway.targets import QueueSpec, Targets

CHECKOUT = Targets(
    stable_service="checkout-service", canary_service="checkout-service-canary",
    flags_table="checkout-feature-flags", queues=(QueueSpec(name="checkout-in", dlq_name="checkout-in-dlq"),),
)
MISSPELT = {"stable_service": "checkout-service", "canary_servce": "checkout-service-canary",
            "flag_table": "checkout-feature-flags"}


def _save_document(name: str, data: dict) -> None:
    """Save ``data`` as the block's document through the API, as a script or IaC tool would,
    without the model (which refuses the typo itself)."""
    RollwayTargets.register_type_and_schema()
    with get_client(sync_client=True) as client:
        try:
            client.delete_block_document(client.read_block_document_by_name(name, "rollway-targets").id)
        except Exception:  # noqa: BLE001  (none of that name yet)
            pass
        client.create_block_document(BlockDocumentCreate(
            name=name, data=data,
            block_schema_id=RollwayTargets._block_schema_id, block_type_id=RollwayTargets._block_type_id,
        ))


def test_a_saved_block_loads_as_saved():
    RollwayTargets(**CHECKOUT.model_dump()).save("checkout-targets", overwrite=True)
    assert load_targets("checkout-targets") == CHECKOUT
    save_blocks(CHECKOUT, _credentials(), targets_block="checkout-registered", credentials_block="checkout-aws")
    assert load_targets("checkout-registered") == CHECKOUT


def test_a_loaded_block_saved_again_with_prefects_own_keys_still_loads():
    RollwayTargets(**CHECKOUT.model_dump()).save("checkout-resaved", overwrite=True)
    loaded = RollwayTargets.load("checkout-resaved")
    dumped = loaded.model_dump()
    assert {"block_type_slug", "_block_document_id", "_block_document_name"} <= set(dumped)
    RollwayTargets(**dumped).save("checkout-resaved", overwrite=True)
    RollwayTargets.model_validate(dumped).save("checkout-resaved", overwrite=True)
    _save_document("checkout-with-slug", {**CHECKOUT.model_dump(mode="json"), "block_type_slug": "rollway-targets"})
    assert load_targets("checkout-resaved") == CHECKOUT == load_targets("checkout-with-slug")


def test_a_misspelt_block_is_refused_when_built_so_it_cannot_be_saved():
    with pytest.raises(ValidationError) as refused:
        RollwayTargets.model_validate(MISSPELT)
    text = str(refused.value)
    assert "canary_servce" in text and "did you mean 'canary_service'?" in text
    assert "flag_table" in text and "did you mean 'flags_table'?" in text


def test_a_saved_document_with_a_misspelt_key_is_refused_at_load_naming_the_key():
    _save_document("typo-targets", MISSPELT)
    with pytest.raises(AccountNotLoaded) as refused:
        load_targets("typo-targets")
    text = str(refused.value)
    assert "typo-targets" in text and "failed validation" in text and "\n" not in text
    assert "canary_servce" in text and "did you mean 'canary_service'?" in text
    assert "flag_table" in text and "did you mean 'flags_table'?" in text
    # A refusal to start: the run's hooks leave the traffic alone.
    state = Failed(data=refused.value, message=f"Flow run encountered an exception: {refused.value!r}")
    assert leave_alone(state, {"targets_block": "typo-targets"}) is not None


def test_a_misspelt_key_inside_a_queue_is_refused_at_load():
    data = CHECKOUT.model_dump(mode="json")
    data["queues"] = [{"name": "checkout-in", "dlq_nme": "checkout-in-dlq"}]
    _save_document("typo-queue", data)
    with pytest.raises(AccountNotLoaded, match=r"queues\.0\.dlq_nme: .*did you mean 'dlq_name'\?"):
        load_targets("typo-queue")


def _credentials():
    from blocks.credentials import credentials_for_endpoint

    return credentials_for_endpoint("http://127.0.0.1:1", "us-west-2")


def test_a_run_given_a_block_name_nobody_saved_says_which_are_saved_and_where_the_name_comes_from(caplog):
    """Prefect's "Unable to find block document named checkout-targts for block type
    rollway-targets" came with its traceback under it, and named neither the blocks saved nor
    the run's parameter the name came from (a run started from the UI, its form filled in)."""
    import logging

    from prefect import flow

    from flows.env import load_credentials

    RollwayTargets(**CHECKOUT.model_dump()).save("checkout-targets", overwrite=True)
    with pytest.raises(AccountNotLoaded) as refused:
        load_targets("checkout-targts")
    text = str(refused.value)
    assert text.startswith("no rollway-targets block named 'checkout-targts' on the Prefect API ")
    assert "checkout-targets" in text.split("saved there: ")[1].split(")")[0]
    assert "pass the name of a saved one as the run's targets_block parameter (did you mean 'checkout-targets'?)" in text
    assert text.endswith("or save one under that name (Blocks in the Prefect UI); nothing was changed")
    with pytest.raises(AccountNotLoaded, match="no aws-credentials block named 'nobody-saved-this' .*the run's "
                                                "aws_credentials_block parameter"):
        load_credentials("nobody-saved-this", "us-west-2")

    @flow
    def started_from_the_ui(targets_block: str) -> None:
        load_targets(targets_block)

    with caplog.at_level(logging.ERROR):
        state = started_from_the_ui("checkout-targts", return_state=True)
    assert state.is_failed() and "did you mean 'checkout-targets'?" in state.message
    failed = [r for r in caplog.records if "checkout-targts" in r.getMessage()]
    assert failed and not any(r.exc_info or r.exc_text for r in failed), "the refusal is logged with a traceback"
