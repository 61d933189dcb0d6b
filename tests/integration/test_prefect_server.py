"""progressive_rollout on a real `prefect server start`, run by served deployments, on the embedded AWS.

Runs are triggered through the API (``run_deployment``), answered through the API
(``resume_flow_run`` with run input) or the ``rollway`` commands, and checked where a user
would look: the load balancer's weights read back, the ECS services, the DynamoDB ledger.
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path
from typing import Any
from uuid import UUID

import httpx
import pytest
from prefect.deployments import run_deployment

from blocks.register import register_block_types
from deployments.serve import deployment_path
from rollway.aws.ecs import EcsDeployer
from rollway.aws.elbv2 import AlbRouter
from rollway.aws.ledger import DynamoLedger
from rollway.cli import app
from rollway.cli.ops import is_final, resume, wait_for_run
from rollway.ledger import RolloutRecord
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.sim.topology import put_release_image
from rollway.spec import Approvals, RolloutSpec, Stage, WeeklyPhase
from rollway.validation import ValidationSpec
from tests.integration.conftest import Live, Served

pytestmark = pytest.mark.integration

# Wall seconds: a flow-run process starts in a few seconds; three 4-minute bakes at 120x take ~6 s.
RUN_TIMEOUT = 150
# Up to 30 minutes per stage, passed early once the (default, sequential) judge has the
# evidence: at 1000 req/s the 5% stage serves 50 req/s, and a healthy canary needs about
# 16,000 requests (about 320 s) to be shown no worse than the baseline. The slack is for a
# loaded machine, where the simulator's datapoints land late on the 120x clock and a
# 15-minute stage has been seen to end Inconclusive.
BAKE_SECONDS = 1800
MIN_BAKE_SECONDS = 120
# After 100%: five minutes of the monitoring window (a few looks, 2.5 wall seconds at 120x) show
# the promoted run watching the canary on the real server; the default hour (30 wall seconds of
# a flow-run process and its ~40 looks' task runs on the API) asserted nothing more.
MONITOR_SECONDS = 300


def small_spec(live: Live, tag: str, *, approvals_before: tuple[int, ...]) -> RolloutSpec:
    """5 -> 50 -> 100%, pausing for approval before the listed weights."""
    return RolloutSpec(
        image=put_release_image(live.account.get_client, live.account.targets, tag),  # in ECR: the rollout pins it
        stages=[
            Stage(weight=w, bake_seconds=BAKE_SECONDS, min_bake_seconds=MIN_BAKE_SECONDS, approval=w in approvals_before)
            for w in (5, 50, 100)
        ],
        approvals=Approvals(timeout_seconds=300),
        monitor_seconds=MONITOR_SECONDS,
    )


def start_rollout(spec: RolloutSpec, actor: str) -> UUID:
    run = run_deployment(
        deployment_path("progressive_rollout"),
        # A short lease, so that the test can wait for it to run out as a slow approver would.
        parameters={"spec": spec.model_dump(mode="json"), "actor": actor, "lease_wall_seconds": LEASE_WALL_SECONDS},
        timeout=0,
    )
    return run.id


def wait_approval(run_id: UUID, live: Live, *, at: int) -> Any:
    """Wait until the run pauses; it must be the approval pause that follows the ``at`` % stage.

    (A resume sets the run Running on the server at once, so an earlier pause is never seen here.)
    """
    run = wait_for_run(run_id, lambda r: r.state.is_paused() or is_final(r), timeout_seconds=RUN_TIMEOUT)
    assert run.state.is_paused(), f"run ended {run.state.name} instead of pausing: {run.state.message}\n{_serve_log(live)}"
    record = ledger_record(live)
    assert (record.weights.canary, record.stage_passed) == (at, True), (
        f"paused at {record.weights} with the stage {'passed' if record.stage_passed else 'not passed'}, "
        f"not for approval after {at}%\n{_serve_log(live)}"
    )
    return run


def wait_finished(run_id: UUID, live: Live) -> Any:
    run = wait_for_run(run_id, is_final, timeout_seconds=RUN_TIMEOUT)
    assert run.state.is_completed(), f"run ended {run.state.name}: {run.state.message}\n{_serve_log(live)}"
    return run


LEASE_WALL_SECONDS = 3.0


def wait_lease_expired(live: Live) -> None:
    """Nothing renews a run's lease while it waits for a person: let it run out, as a slow
    approver would. Leases are on the wall clock, whatever the run's rollout clock."""
    deadline = time.monotonic() + 60
    while ledger_record(live).lease_expires >= time.time():
        assert time.monotonic() < deadline, "the paused run's lease never expired"
        time.sleep(0.2)


def _serve_log(live: Live) -> str:
    return "\n".join(live.log.read_text(errors="replace").splitlines()[-60:])


def alb_weights(live: Live) -> Weights:
    return AlbRouter(live.account.get_client("elbv2"), live.account.targets).get_weights()


def ledger_record(live: Live) -> RolloutRecord:
    record = DynamoLedger(live.account.get_client("dynamodb"), live.account.targets).get(
        live.account.targets.canary_service
    )
    assert record is not None, "nothing recorded in the ledger"
    return record


def shifts(record: RolloutRecord) -> list[int]:
    return [t.to_weights.canary for t in record.history if t.kind == "shift"]


def kinds(record: RolloutRecord) -> list[str]:
    return [t.kind for t in record.history]


def cli(*args: str) -> int:
    return app(list(args), result_action="return_value")


def test_approved_rollout_reaches_100_percent_with_every_transition_recorded(live: Live) -> None:
    spec = small_spec(live, "2.0.0", approvals_before=(100,))
    run_id = start_rollout(spec, actor="integration")

    wait_approval(run_id, live, at=50)
    assert alb_weights(live) == Weights.canary_at(50)
    wait_lease_expired(live)  # an answer after the lease ran out must still count
    resume(run_id, {"action": "approve", "approver": "alice", "comment": "error rates look fine"})
    wait_finished(run_id, live)

    assert alb_weights(live) == Weights(stable=0, canary=100)
    record = ledger_record(live)
    assert record.phase is RolloutPhase.PROMOTED
    assert record.image == spec.image and record.weights == Weights(stable=0, canary=100)
    history = kinds(record)
    for kind in ("start", "deploy", "phase", "approve", "promote"):
        assert kind in history, f"no {kind!r} transition in {history}"
    assert shifts(record) == [5, 50, 100]
    approve = next(t for t in record.history if t.kind == "approve")
    assert approve.actor == "alice" and "error rates look fine" in (approve.comment or "")
    # The approval came between the 50% and the 100% shift, and the promotion last.
    shift_100 = next(i for i, t in enumerate(record.history) if t.kind == "shift" and t.to_weights.canary == 100)
    assert history.index("approve") < shift_100 < history.index("promote")
    assert record.owner is None, "a finished rollout keeps no lease"


def test_cancel_on_a_paused_run_rolls_it_back(live: Live) -> None:
    """The UI's Cancel on a run waiting for an approval, with the runner of a served deployment:
    the run ends Cancelled and its cancellation hook rolls the rollout back, once."""
    from prefect.client.orchestration import get_client
    from prefect.states import Cancelling

    spec = small_spec(live, "2.0.0", approvals_before=(50,))
    run_id = start_rollout(spec, actor="integration")
    wait_approval(run_id, live, at=5)
    with get_client(sync_client=True) as client:
        client.set_flow_run_state(run_id, Cancelling(message="cancelled from the UI"), force=True)
    run = wait_for_run(run_id, is_final, timeout_seconds=RUN_TIMEOUT)
    assert run.state.is_cancelled(), f"run ended {run.state.name}: {run.state.message}\n{_serve_log(live)}"

    deadline = time.monotonic() + RUN_TIMEOUT
    while ledger_record(live).phase is not RolloutPhase.ROLLED_BACK:
        assert time.monotonic() < deadline, f"no rollback after the cancel: {kinds(ledger_record(live))}\n{_serve_log(live)}"
        time.sleep(0.5)
    assert alb_weights(live) == Weights(stable=100, canary=0)
    record = ledger_record(live)
    assert kinds(record).count("rollback") == 1, kinds(record)
    assert "timeout" not in kinds(record) and "approve" not in kinds(record), kinds(record)


def test_status_promote_and_abort_commands(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    spec = small_spec(live, "2.0.0", approvals_before=(50, 100))
    run_id = start_rollout(spec, actor="integration")

    wait_approval(run_id, live, at=5)
    capsys.readouterr()
    assert cli("status") == 0
    shown = capsys.readouterr().out
    assert spec.image in shown and "progressing" in shown
    assert "95/5" in shown, "status shows the live weights"
    assert str(run_id) in shown, "status names the paused run"

    assert cli("promote", "--approver", "carol", "--comment", "5% is fine") == 0
    wait_approval(run_id, live, at=50)  # the second approval, before 100%
    assert alb_weights(live) == Weights.canary_at(50)

    # A reject answered to the pause before 100%: the run rolls back and ends, every step recorded.
    assert cli("abort", "--approver", "dave", "--reason", "saw a latency regression") == 0
    wait_finished(run_id, live)
    assert alb_weights(live) == Weights(stable=100, canary=0)
    targets = live.account.targets
    assert EcsDeployer(live.account.get_client("ecs"), targets).describe(targets.canary_service).desired == 0
    record = ledger_record(live)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.weights == Weights(stable=100, canary=0)
    answers = [(t.kind, t.actor) for t in record.history if t.kind in ("approve", "reject")]
    assert answers == [("approve", "carol"), ("reject", "dave")]
    reject = next(t for t in record.history if t.kind == "reject")
    assert "saw a latency regression" in (reject.comment or "")
    assert kinds(record)[-1] == "rollback"
    assert kinds(record).index("reject") < kinds(record).index("rollback")
    assert shifts(record) == [5, 50], record.history

    capsys.readouterr()
    assert cli("promote", "--approver", "carol") == 1, "nothing is paused any more"
    assert "no paused rollout run" in capsys.readouterr().err
    assert cli("status") == 0
    assert "rolled_back" in capsys.readouterr().out


def test_abort_without_a_paused_run_rolls_back_directly_and_records_it(live: Live) -> None:
    spec = small_spec(live, "2.0.0", approvals_before=()).model_copy(
        update={"phases": (WeeklyPhase(name="week 1", weights=(5,)), WeeklyPhase(name="week 2", weights=(50, 100)))}
    )
    run_id = start_rollout(spec, actor="integration")
    wait_finished(run_id, live)  # week 1 done: the rollout holds at 5% until the next phase
    record = ledger_record(live)
    assert (record.phase, record.weights, record.owner) == (RolloutPhase.PAUSED, Weights.canary_at(5), None)

    assert cli("abort", "--approver", "erin", "--reason", "customer escalation") == 0

    assert alb_weights(live) == Weights(stable=100, canary=0)
    targets = live.account.targets
    assert EcsDeployer(live.account.get_client("ecs"), targets).describe(targets.canary_service).desired == 0
    record = ledger_record(live)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.weights == Weights(stable=100, canary=0)
    last = record.history[-1]
    assert (last.kind, last.actor) == ("rollback", "erin") and "customer escalation" in (last.comment or "")
    # The intent is recorded first, in the person's words, before any run is cancelled.
    intent = record.last_transition("rollback-start")
    assert intent is not None and (intent.actor, "customer escalation" in intent.comment) == ("erin", True)
    assert cli("abort", "--approver", "erin") == 1, "a finished rollout has nothing to abort"


def test_served_deployments_have_their_parameters_and_the_weekly_schedule(served: Served) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        weekly = client.read_deployment_by_name(deployment_path("advance_phase"))
        progressive = client.read_deployment_by_name(deployment_path("progressive_rollout"))
        for name in ("canary", "rollback", "set-flags"):
            client.read_deployment_by_name(deployment_path(name))
    assert [s.schedule.cron for s in weekly.schedules] == ["0 9 * * MON"]
    assert weekly.schedules[0].schedule.timezone == "UTC"
    assert progressive.parameters["targets_block"] == "rollway-targets"
    assert progressive.parameters["aws_credentials_block"] == "rollway-embedded"
    assert progressive.parameters["clock"] == served.clock.model_dump(mode="json")


def test_validate_deployment_by_default_checks_the_app_it_was_served_with(live: Live) -> None:
    """validate_deployment as `rollway up` serves it: its default spec checks the stand-in app the
    serve script was handed (serve_process's ``validation_url``), not Webordinary's real addresses.
    (Here rather than in a file of its own: this file's server and served deployments are started
    once for all of it, and a file of its own started them again for one run.)"""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_path("validate_deployment"))
    assert "spec" in deployment.parameters, (
        "validate_deployment was served without a default spec: the `served` fixture "
        "(tests/integration/conftest.py) must hand serve_process a validation_url")
    spec = ValidationSpec.model_validate(deployment.parameters["spec"])
    assert spec.health_url.startswith("http://127.0.0.1:")
    assert httpx.get(spec.health_url, timeout=10).status_code == 200  # the served app, running
    # No parameters: the run takes the deployment's defaults, as a Quick run from the UI does.
    run = run_deployment(deployment_path("validate_deployment"), timeout=RUN_TIMEOUT)
    assert run.state is not None and run.state.is_completed(), (
        f"{run.state}\n--- serve log ---\n{live.log.read_text()[-4000:]}")


def test_prefect_yaml_deploys_every_flow_to_a_process_pool(served: Served, tmp_path: Path) -> None:
    """`prefect deploy --all` accepts deployments/prefect.yaml, as a user would run it."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists

    root = Path(__file__).resolve().parents[2]
    # The file names its deployments `rollway`, as serve.py does: deployed as it is onto this
    # session's server, it would take over the served deployments the other tests run (on a pool
    # with no worker, with the file's blocks). The copy differs in the names only.
    text = (root / "deployments" / "prefect.yaml").read_text()
    assert text.count("  - name: rollway\n") == 13 and "  - name: " + "webordinary" not in text
    copy = tmp_path / "prefect.yaml"
    copy.write_text(text.replace("  - name: rollway\n", "  - name: from-yaml\n"))
    assert register_block_types() == ["rollway-targets", "aws-credentials"]
    with get_client(sync_client=True) as client:
        try:
            client.create_work_pool(WorkPoolCreate(name="rollway-process", type="process"))
        except ObjectAlreadyExists:
            pass
    done = subprocess.run(
        [sys.executable, "-m", "prefect", "--no-prompt", "deploy", "--all", "--prefect-file", str(copy)],
        cwd=root, env=served.process.env, capture_output=True, text=True, timeout=240,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]

    with get_client(sync_client=True) as client:
        deployments = {
            name: client.read_deployment_by_name(f"{name}/from-yaml")
            for name in ("canary", "progressive_rollout", "advance_phase", "rollback", "set-flags")
        }
    assert {d.work_pool_name for d in deployments.values()} == {"rollway-process"}
    weekly = deployments["advance_phase"]
    assert [(s.schedule.cron, s.schedule.timezone, s.active) for s in weekly.schedules] == [("0 9 * * MON", "UTC", True)]
    progressive = deployments["progressive_rollout"]
    assert progressive.entrypoint == "flows.progressive.progressive_rollout"
    assert progressive.parameters == {
        "targets_block": "rollway-targets", "aws_credentials_block": "rollway-aws", "phased": True,
        "approval_poll_seconds": 2,
    }
    # No pull step in the file: prefect records the directory it deployed from.
    assert progressive.pull_steps == [
        {"prefect.deployments.steps.set_working_directory": {"directory": str(root)}}
    ]


def test_flags_commands_against_the_saved_blocks(live: Live, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli("flags", "set", "use_sqs_architecture", "--create", "--enabled", "--percentage", "25",
               "--actor", "gina", "--reason", "week 2") == 0
    assert "use_sqs_architecture" in capsys.readouterr().out
    assert cli("flags", "set", "use_sqs_architecture", "--percentage", "140", "--actor", "gina") == 2
    refused = capsys.readouterr()
    assert "140" in refused.err and refused.out == ""  # the error names the value; nothing was written
    assert cli("flags", "list") == 0
    listed = capsys.readouterr().out
    assert "use_sqs_architecture" in listed and "25" in listed
    assert cli("flags", "eval", "use_sqs_architecture", "user-1", "user-2", "--json") == 0
    results = __import__("json").loads(capsys.readouterr().out)["results"]
    assert [r["user"] for r in results] == ["user-1", "user-2"]
    assert all(r["on"] == (r["bucket"] < 2500) for r in results)
    assert cli("flags", "get", "use_sqs_architecture") == 0
    assert "gina" in capsys.readouterr().out  # the audit trail names who changed it
