"""What a person sees in the Prefect UI's "Run -> Custom run" form of each served deployment,
and in a paused rollout's answer form: the JSON schemas serve.py registers and the UI renders.

Prefect takes a parameter's description from its flow's docstring (a Google ``Args:`` section)
or a ``Field(description=...)``; without one the form shows only the parameter's name.
"""

from __future__ import annotations

import pytest

from rollway.clock import ClockSettings
from rollway.spec import RolloutSpec

def _served() -> dict:
    from deployments.serve import build_deployments

    return {d.flow_name: d for d in build_deployments(
        targets_block="rollway-targets", aws_credentials_block="rollway-aws",
        clock=ClockSettings(), spec=RolloutSpec(image="repo/app:2.0.0"))}


SERVED = _served()


def _form(deployment) -> dict:
    """The parameter schema as serve.py registers it (RunnerDeployment's own dump for the API)."""
    return deployment._parameter_openapi_schema.model_dump(exclude_unset=True)


@pytest.mark.parametrize("flow_name", sorted(SERVED))
def test_every_parameter_of_every_deployment_says_what_it_is(flow_name) -> None:
    """A parameter without a description showed as its bare name (``lease_wall_seconds``,
    ``adopt_live_weights``) in the run form of every rollout flow."""
    properties = _form(SERVED[flow_name])["properties"]
    undescribed = [name for name, field in properties.items() if not (field.get("description") or "").strip()]
    assert not undescribed, f"{flow_name}'s form shows these without a description: {undescribed}"
    untitled = [name for name, field in properties.items() if not field.get("title")]
    assert not untitled, untitled


@pytest.mark.parametrize("flow_name", sorted(SERVED))
def test_every_field_of_every_form_is_titled_in_words(flow_name) -> None:
    """Prefect titles each field with its parameter's name (a Field's title on the signature is
    overwritten): the form's labels read ``aws_credentials_block``, ``lease_wall_seconds``."""
    properties = _form(SERVED[flow_name])["properties"]
    raw = {name: field.get("title") for name, field in properties.items()
           if not field.get("title") or "_" in field["title"] or field["title"] == name or not field["title"][0].isupper()}
    assert not raw, f"{flow_name}'s form labels these fields with a raw name: {raw}"


def test_the_block_and_time_fields_read_as_a_person_says_them() -> None:
    properties = _form(SERVED["progressive_rollout"])["properties"]
    assert properties["aws_credentials_block"]["title"] == "AWS credentials block (its name)"
    assert properties["targets_block"]["title"] == "Targets block (its name)"
    assert properties["approval_poll_seconds"]["title"] == "Approval poll interval (seconds)"
    assert properties["lease_wall_seconds"]["title"] == "Lease length (seconds, wall clock)"
    assert properties["spec"]["title"] == "Rollout spec"


def test_validate_deployments_spec_is_not_labelled_a_rollout_spec() -> None:
    """validate_deployment's ``spec`` is the checks' (URLs, test ids, timeouts), no rollout's:
    labelled "Rollout spec", its form sent a person looking for stages and an image."""
    title = _form(SERVED["validate_deployment"])["properties"]["spec"]["title"]
    assert title == "Validation spec (URLs and checks)", title


# A form shows a description as a short line under its field: Prefect keeps the line breaks of an
# ``Args:`` entry continued over several lines of the docstring, and a paragraph buries the field.
MAX_DESCRIPTION = 200


def _not_one_line(properties: dict) -> dict[str, str]:
    """The fields whose description is over several lines or longer than a line."""
    return {name: field["description"] for name, field in properties.items()
            if "\n" in field.get("description", "") or len(field.get("description", "")) > MAX_DESCRIPTION}


@pytest.mark.parametrize("flow_name", sorted(SERVED))
def test_every_parameter_s_description_is_one_line(flow_name) -> None:
    """``finalize``'s ``unrecorded`` reached its form as four lines, broken where its docstring's
    lines were, and ``canary``'s ``finalize`` as six (430 characters beside a checkbox)."""
    broken = _not_one_line(_form(SERVED[flow_name])["properties"])
    assert not broken, (f"{flow_name}'s form shows these descriptions over several lines or longer than "
                        f"{MAX_DESCRIPTION} characters: {broken}")


@pytest.mark.parametrize("flow_name", sorted(SERVED))
def test_no_secret_is_shown_in_a_form(flow_name) -> None:
    """Defaults and descriptions are shown to anyone who opens the form: no secret value in them."""
    deployment = SERVED[flow_name]
    shown = str(_form(deployment)).lower() + str(deployment.parameters).lower() + (deployment.description or "").lower()
    assert "**********" not in shown and "writeonly" not in shown
    for field in _form(deployment)["properties"].values():
        assert field.get("format") != "password", field


def test_the_pause_form_says_what_each_answer_does() -> None:
    """The answer form's fields are what a person reads before approving production traffic.
    next_weight read "a different next canary weight within the spec's stages", so an earlier
    stage, or a skip at a pause the judge could not decide, looked allowed; the run refused it
    and asked again an analysis interval later, when the person may have gone."""
    from flows.approvals import ApprovalInput

    form = ApprovalInput.model_json_schema()
    fields = form["properties"]
    assert fields["action"]["enum"] == ["approve", "reject", "hold"]  # a dropdown, not free text
    action = fields["action"]["description"]
    for answer in ("approve:", "reject: roll back", "hold: stay at the current weights"):
        assert answer in action, action
    skip = fields["next_weight"]["description"]
    assert "only with approve" in skip and "later stage" in skip and "empty:" in skip, skip
    assert set(form["required"]) == {"action", "approver"}
    assert all(field.get("description") for field in fields.values()), fields
    assert not _not_one_line(fields), _not_one_line(fields)


def _sub_forms() -> dict[str, dict]:
    forms: dict[str, dict] = {}
    for deployment in SERVED.values():
        forms.update(_form(deployment).get("definitions", {}))
    return forms


@pytest.mark.parametrize("model", sorted(_sub_forms()))
def test_every_field_of_a_parameter_s_sub_form_says_what_it_is(model) -> None:
    """validate_deployment's ``spec`` showed fourteen bare names (``success_rate_services``,
    ``authorization_secret_block``: the name of a Secret block, not the token), and the clock
    its ``speed``: their help was in a docstring's Attributes section, which no form reads."""
    fields = _sub_forms()[model]["properties"]
    undescribed = [name for name, field in fields.items() if not (field.get("description") or "").strip()]
    assert not undescribed, f"the {model} part of the form shows these without a description: {undescribed}"


@pytest.mark.parametrize("model", sorted(_sub_forms()))
def test_every_field_of_a_parameter_s_sub_form_has_a_one_line_description(model) -> None:
    """The spec's settings are fields of its part of the form, not parameters: the parameters' check
    missed ``analysis.calibration_seconds``, whose help ran to 435 characters under its box, and
    ``min_phase_seconds``, ``schedule_slack_seconds``, ``metrics_delay_seconds`` and three of
    validate_deployment's settings, each over 200 (their detail is in the README)."""
    broken = _not_one_line(_sub_forms()[model]["properties"])
    assert not broken, (f"the {model} part of the form shows these descriptions over several lines or longer "
                        f"than {MAX_DESCRIPTION} characters: {broken}")


def test_the_rollback_form_has_no_switch_that_only_the_state_hooks_may_set() -> None:
    """The rollback deployment's form showed ``leave_closed_rollout`` ("for the state hooks, leave it
    off"): switched on from the form, a person's rollback of a promoted release took it out of
    production and left the ledger saying it was still promoted. The hooks' rollback does that on a
    flow of its own, which no deployment serves."""
    properties = _form(SERVED["rollback"])["properties"]
    assert "leave_closed_rollout" not in properties, properties["leave_closed_rollout"]


def test_the_spec_s_margin_says_it_is_on_the_canary_s_own_rate_as_the_judge_s_help_and_the_readme_do() -> None:
    """`rollway judge --help` says --margin is on the canary's own rate, whatever the baseline's;
    the spec's form and the README's table said "absolute error-rate margin tolerated when
    passing", read as a margin over the baseline's rate."""
    from pathlib import Path

    from rollway.cli import judge

    described = _sub_forms()["Analysis"]["properties"]["margin"]["description"]
    assert "the canary passes once its own rate is shown below this, whatever the baseline's" in described, described
    assert "the canary passes once its own rate is shown below this" in judge.__doc__
    readme = Path(__file__).parents[2].joinpath("README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.strip().startswith("| `analysis.margin` |")]
    assert row.strip().endswith(f"| {described} |"), (row, described)


def test_the_spec_s_verify_timeout_says_it_bounds_the_weight_reads_a_run_waits_on_as_the_readme_does() -> None:
    """``verify_timeout_seconds`` read "how long a weight read-back may lag" in the form and the
    README's table, yet it also ends each read of the load balancer's weights a run waits on (at
    its start, a resume's reconcile, the preflight, a finalize, the monitor, a rollback's looks)
    when the load balancer stops answering: a person setting it did not know it did that."""
    from pathlib import Path

    described = _sub_forms()["RolloutSpec"]["properties"]["verify_timeout_seconds"]["description"]
    assert "how long a weight read-back may lag" in described, described
    assert "each read of the load balancer's weights a run waits on" in described, described
    readme = Path(__file__).parents[2].joinpath("README.md").read_text()
    (row,) = [line for line in readme.splitlines() if line.strip().startswith("| `verify_timeout_seconds` |")]
    assert row.strip().endswith(f"| {described} |"), (row, described)


def test_the_canary_form_takes_edited_stages_without_a_phase_plan_to_edit_too() -> None:
    """The canary flow runs every stage in one run, yet its form was pre-filled with the default
    weekly plan: a person who dropped a stage (75 %) was refused for the plan ("phases give [5, 25,
    50, 75, 100]"), then, the plan edited to match, by the canary flow for having weekly phases, and
    an emptied plan was refused too. The form leaves the plan out, so the stages run as one phase."""
    from flows.canary import canary, phase_plan_refusal

    parameters = SERVED["canary"].parameters
    as_filled = canary.validate_parameters(parameters)["spec"]
    assert as_filled.weights == RolloutSpec(image="repo/app:2.0.0").weights
    assert phase_plan_refusal(as_filled) is None
    edited = {**parameters, "spec": {**parameters["spec"],
                                     "stages": [s for s in parameters["spec"]["stages"] if s["weight"] != 75]}}
    spec = canary.validate_parameters(edited)["spec"]
    assert spec.weights == (5, 25, 50, 100) and phase_plan_refusal(spec) is None
    assert "phases" not in parameters["spec"]


def test_set_flags_form_says_its_credentials_field_as_the_rollout_forms_do() -> None:
    """set-flags' form said "None uses boto3's default chain" where the rollout flows' forms say
    "empty: boto3's default chain": a form has no None to type, and the same field read two ways."""
    said = {name: _form(SERVED[name])["properties"]["aws_credentials_block"]["description"]
            for name in ("set-flags", "canary", "progressive_rollout", "rollback", "finalize")}
    assert len(set(said.values())) == 1, said


@pytest.mark.parametrize("field", ["targets_block", "aws_credentials_block"])
def test_a_block_field_says_a_cleared_field_keeps_the_deployment_s_block(field) -> None:
    """Every form said "empty: Webordinary's names" (and "empty: boto3's default chain") under a
    field pre-filled with the deployment's block: the API fills a field left out of a run with
    the deployment's value, so a person who cleared it to get Webordinary's names ran on the
    served block's names (another team's service, another account) all the same."""
    said = {name: _form(deployment)["properties"][field]["description"]
            for name, deployment in SERVED.items() if field in deployment.parameters}
    assert set(said) == set(SERVED), set(SERVED) - set(said)
    wrong = {name: text for name, text in said.items() if "cleared: the deployment's block" not in text}
    assert not wrong, wrong
    # What the flows fall back to without a block at all is still said, after the deployment's.
    fallback = "Webordinary's names" if field == "targets_block" else "boto3's default chain"
    assert all(f"none: {fallback}" in text for text in said.values()), said


def test_the_finalize_form_takes_a_reason_to_accept_a_breach_and_refuses_a_blank_one() -> None:
    """A release whose monitoring window saw a breach it could not roll back was refused by every
    finalize, and the form had no field to keep it on a person's recorded word."""
    field = _form(SERVED["finalize"])["properties"]["accept_breach"]
    assert field["title"] == "Accept the breach not rolled back, because"
    assert field.get("default") is None and "judged it harmless" in field["description"]
    text = next(option for option in field["anyOf"] if option.get("type") == "string")
    assert text["pattern"] == r"\S", "the form refuses a blank reason as it is typed"


def test_verify_infrastructure_s_description_names_every_kind_of_item_its_checklist_checks() -> None:
    """The UI's description listed tables, queues, dashboard, alarms and the topic; the checklist
    also checks the stacks and, with canary_header, the listener rule pinning the validation's checks."""
    from typing import get_args

    from rollway.checklist import Kind

    said = SERVED["verify_infrastructure"].description
    assert all(kind in said for kind in get_args(Kind)), said


@pytest.mark.parametrize("flow_name", ["deploy_infrastructure", "verify_infrastructure"])
def test_an_infrastructure_description_says_canary_header_adds_the_listener_rule(flow_name) -> None:
    said = SERVED[flow_name].description
    assert "with canary_header or validation_spec, the listener rule pinning validate_deployment's checks" in said, said


@pytest.mark.parametrize("flow_name", ["deploy_infrastructure", "verify_infrastructure"])
def test_an_empty_canary_header_is_said_to_take_the_validation_spec_s(flow_name) -> None:
    """Left empty beside a validation_spec setting one, the header is the spec's and the rule is
    checked: the form said "none: not checked"."""
    said = _form(SERVED[flow_name])["properties"]["canary_header"]["description"]
    assert "none: validation_spec's, when it sets one; else not checked." in said, said
