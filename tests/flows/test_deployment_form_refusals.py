"""A run form the Prefect API refuses as it is filled in: serve.py's deployments enforce their
parameter schema, so a value the schema rules out is refused when the run is created (the UI
says which field and why), not by a run that starts on the worker and fails there."""

from __future__ import annotations

import pytest
from prefect.client.orchestration import get_client
from prefect.exceptions import PrefectHTTPStatusError

from flows.params import MAX_REASON


@pytest.fixture(scope="module")
def advance_phase_deployment() -> str:
    from deployments.serve import build_deployments

    (deployment,) = [d for d in build_deployments(targets_block="rollway-targets", aws_credentials_block="rollway-aws")
                     if d.flow_name == "advance_phase"]
    return str(deployment.apply())


def _created(deployment_id: str, parameters: dict) -> str | None:
    """None when the API creates the run (deleted again), else the API's refusal."""
    with get_client(sync_client=True) as client:
        try:
            run = client.create_flow_run_from_deployment(deployment_id, parameters=parameters)
        except PrefectHTTPStatusError as err:
            assert err.response.status_code == 409, err
            return err.response.json()["detail"]
        client.delete_flow_run(run.id)
        return None


@pytest.mark.parametrize("reason, refused", [
    # Taken by the form, the run started and failed on the worker ("must say why").
    ("   ", "Validation failed for field 'start_early_because'"),
    ("x" * (MAX_REASON + 1), "Validation failed for field 'start_early_because'"),
])
def test_a_blank_or_overlong_reason_to_start_early_is_refused_by_the_form(advance_phase_deployment, reason,
                                                                          refused) -> None:
    said = _created(advance_phase_deployment, {"start_early_because": reason, "actor": "dana"})
    assert said is not None and refused in said, said


@pytest.mark.parametrize("reason", [None, "the fix for the outage must reach everyone today", "x" * MAX_REASON])
def test_no_reason_or_one_that_says_why_is_taken(advance_phase_deployment, reason) -> None:
    assert _created(advance_phase_deployment, {"start_early_because": reason, "actor": "dana"}) is None


def _applied(flow_name: str) -> str:
    from deployments.serve import build_deployments

    (deployment,) = [d for d in build_deployments(targets_block="rollway-targets", aws_credentials_block="rollway-aws")
                     if d.flow_name == flow_name]
    return str(deployment.apply())


@pytest.fixture(scope="module")
def cleanup_deployment() -> str:
    return _applied("cleanup")


@pytest.mark.parametrize("stack", [
    # Taken by the form as any text, as deploy_infrastructure's stacks are not: the run started
    # on the worker and was refused there.
    "webordinary old stack", "9-old-stack", "old_stack", "", "a" * 129, "WebordinaryOldStack\n",
])
def test_an_old_stack_that_is_not_a_cloudformation_stack_name_is_refused_by_the_form(cleanup_deployment,
                                                                                      stack) -> None:
    said = _created(cleanup_deployment, {"old_stacks": ["webordinary-old-stack", stack]})
    assert said is not None and "Validation failed for field 'old_stacks[1]'" in said, said


@pytest.mark.parametrize("stacks", [None, [], ["webordinary-old-stack", "WebordinaryOldStack", "A" * 128]])
def test_old_stacks_that_are_stack_names_are_taken_by_the_form(cleanup_deployment, stacks) -> None:
    assert _created(cleanup_deployment, {"old_stacks": stacks}) is None


def test_a_stack_name_with_a_line_break_after_it_is_refused_by_deploy_infrastructures_form() -> None:
    # The API checks a pattern with Python's re.search, whose '$' also matches before a final line
    # break: "WebordinaryALBStack\n" was taken, and refused only by the run on the worker.
    deployment = _applied("deploy_infrastructure")
    said = _created(deployment, {"cdk_app_dir": "/srv/cdk", "stacks": ["WebordinaryALBStack\n"]})
    assert said is not None and "Validation failed for field 'stacks[0]'" in said, said
    assert _created(deployment, {"cdk_app_dir": "/srv/cdk", "stacks": ["WebordinaryALBStack"]}) is None


@pytest.mark.parametrize("option, block_type", [("--targets-block", "rollway-targets"),
                                                ("--credentials-block", "aws-credentials")])
def test_serve_refuses_a_block_no_block_is_saved_under_before_registering_anything(monkeypatch, capsys, option,
                                                                                   block_type) -> None:
    """serve.py registered every deployment with a misspelt --targets-block (or --credentials-block)
    as its default, and said nothing: each run started from the UI or the weekly schedule then
    failed on loading it, the weekly phase lost with it. A name no block is saved under is refused
    before anything is registered, naming the saved ones; a saved one is served."""
    import deployments.serve as serve
    from prefect_aws import AwsCredentials

    from blocks.targets import RollwayTargets
    from rollway.targets import Targets

    saved = {"rollway-targets": lambda: RollwayTargets(**Targets().model_dump()),
             "aws-credentials": lambda: AwsCredentials(region_name="us-west-2")}[block_type]()
    saved.save("serve-checked-block", overwrite=True)
    served: list[object] = []
    monkeypatch.setattr(serve, "serve_all", lambda deployments, **options: served.append(deployments))
    with pytest.raises(SystemExit) as ended:
        serve.run([option, "serve-checked-blok"])
    assert ended.value.code == 2 and served == []
    said = capsys.readouterr().err
    assert said.startswith(f"error: no {block_type} block named 'serve-checked-blok' on the Prefect API "), said
    assert f"pass the name of a saved one as {option} (did you mean 'serve-checked-block'?)" in said, said
    assert said.rstrip().endswith("nothing was registered") and said.count("\n") == 1, said

    with pytest.raises(SystemExit) as ended:
        serve.run([option, "serve-checked-block"])
    assert ended.value.code in (0, None) and len(served) == 1


def registers_without_serving(monkeypatch):
    """``serve.py`` with no options, as a callable: it registers the deployments for real, and
    leaves no runner running."""
    import deployments.serve as serve
    from prefect.runner import Runner

    async def not_served(self, *args, **kwargs):
        return None

    def served() -> None:
        with pytest.raises(SystemExit) as ended:
            serve.run([])
        assert ended.value.code in (0, None)

    monkeypatch.setattr(Runner, "start", not_served)
    return served


@pytest.mark.parametrize("paused_by_hand", ["schedule", "deployment"])
def test_a_weekly_schedule_paused_in_the_ui_stays_paused_when_serve_restarts(monkeypatch, capsys, paused_by_hand):
    """A person paused advance_phase's weekly schedule (or the deployment) in the UI to hold the
    rollout at its phase, an incident say. serve.py, restarted (a reboot, an upgrade), registered
    the deployment again with its schedule active and the deployment unpaused: the next Monday's
    run started the next phase, traffic moved, without a word. What a person paused on the API stays
    paused, and serve.py says so as it starts."""
    served = registers_without_serving(monkeypatch)
    served()
    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name("advance_phase/rollway")
        (schedule,) = deployment.schedules
        assert schedule.active and not deployment.paused
        if paused_by_hand == "schedule":
            client.update_deployment_schedule(deployment.id, schedule.id, active=False)
        else:
            client.pause_deployment(deployment.id)
    capsys.readouterr()

    served()

    with get_client(sync_client=True) as client:
        again = client.read_deployment_by_name("advance_phase/rollway")
        try:
            assert again.id == deployment.id
            if paused_by_hand == "schedule":
                assert [s.active for s in again.schedules] == [False]
            else:
                assert again.paused
        finally:  # the other tests' advance_phase deployment is served as serve.py makes it
            client.resume_deployment(again.id)
            for kept in again.schedules:
                client.update_deployment_schedule(again.id, kept.id, active=True)
    out = capsys.readouterr().out
    assert f"advance_phase/rollway: {'its weekly schedule' if paused_by_hand == 'schedule' else 'the deployment'} " \
           "stays paused, as it was paused on the Prefect API" in out, out
