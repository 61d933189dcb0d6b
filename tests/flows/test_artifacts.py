"""What a rollout shows in the Prefect UI: progress, a table per stage, a summary (the canary flow: the summary)."""

from __future__ import annotations

import datetime as dt

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.journal import artifact_key
from flows.progressive import run_progressive
from rollway.approvals import ApprovalAnswer, auto_approve
from rollway.fakes import FakeLedger
from rollway.spec import RolloutSpec, Stage
from tests.flows.fake_env import fake_environment

IMAGE = "webordinary/edit-container:2.0.0"


# The flow runs `rollout` and `run_on` started, newest last: `latest` reads the newest one's
# artifacts only. Reading the newest artifact of a key in the whole API picked up, now and then, one
# a run of an earlier test in the same process (a paused run's thread ending late) made after ours.
RUNS: list = []


@flow
def rollout(env, spec):
    from prefect.runtime import flow_run

    RUNS.append(flow_run.id)
    return run_progressive(env, spec, auto_approve("frank"), owner="run-1", phased=False)


def latest(key: str):
    """The newest artifact ``key`` of the newest run `rollout` or `run_on` started."""
    from prefect.client.schemas.filters import ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            key=ArtifactFilterKey(any_=[key]), flow_run_id=ArtifactFilterFlowRunId(any_=[RUNS[-1]])))
    assert found, f"no artifact {key} of flow run {RUNS[-1]}"
    return max(found, key=lambda a: a.created)


def api_refuses(monkeypatch, module, *names: str) -> None:
    """The Prefect API refuses (a 503, an outage) each of ``module``'s artifact calls ``names``."""

    def refused(*args, **kwargs):
        raise RuntimeError("the Prefect API is unreachable")

    for name in names:
        monkeypatch.setattr(module, name, refused)


def healthy_rollout_with_its_hooks(monkeypatch, monitor_seconds: int):
    """A `progressive_rollout` run (its state hooks included) of a healthy canary, 5 then 100 %;
    the fake environment and the run's final state."""
    from flows.progressive import progressive_rollout
    from tests.flows.test_refusals import hooks_and_flows_see

    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    hooks_and_flows_see(monkeypatch, env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)],
                       monitor_seconds=monitor_seconds)
    return env, progressive_rollout(spec=spec.model_dump(mode="json"), phased=False, return_state=True)


def test_progress_stage_tables_and_summary():
    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (10, 60, 100)], monitor_seconds=0)
    result = rollout(env, spec)
    assert result.outcome == "promoted"
    service = env.targets.canary_service

    assert float(latest(artifact_key(service, "progress")).data) == 100.0

    windows = []
    for stage, report in zip(spec.stages, result.stages):
        table = latest(artifact_key(service, f"stage-{stage.weight}"))
        rows = table.data if isinstance(table.data, list) else __import__("json").loads(table.data)
        row = rows[0]
        assert row["weights s/c"] == f"{100 - stage.weight}/{stage.weight}"
        # At 100 % the stable group had no request count at all: not a count of 0, and said why.
        base = "no baseline traffic at 100%" if stage.weight == 100 else f"{report.baseline.requests:,}"
        assert row["canary req"] == f"{report.canary.requests:,}" and row["base req"] == base
        assert row["canary err"] == f"{report.canary.errors:,}"
        assert row["verdict"] == "successful" and row["reason"] == report.verdict.reason
        windows.append(row["metrics window"])
    # The UTC periods each stage's counts sum, to line them up with a CloudWatch dashboard: from the
    # first whole period after its shift to the one its judge decided at (the first, here).
    assert windows == ["2027-01-15 08:00:00 to 08:01:00 UTC", "2027-01-15 08:03:00 to 08:04:00 UTC",
                       "2027-01-15 08:06:00 to 08:07:00 UTC"], windows

    summary = latest(artifact_key(service, "summary")).data
    assert IMAGE in summary and "promoted" in summary
    assert summary.count("| ") > 3 * len(spec.stages)  # the per-stage table is in it


def test_a_rolled_back_stage_gets_its_table_and_the_summary_shows_it():
    """The stage the judge failed is the one an engineer opens the run for."""
    env = fake_environment(canary_error_rate=0.05)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=600) for w in (7, 50, 100)], monitor_seconds=0)
    result = rollout(env, spec)
    assert result.outcome == "rolled_back" and len(result.stages) == 1
    failed = result.stages[0]
    assert failed.canary.errors > 0
    service = env.targets.canary_service

    table = latest(artifact_key(service, "stage-7"))
    row = (table.data if isinstance(table.data, list) else __import__("json").loads(table.data))[0]
    assert row["canary err"] == f"{failed.canary.errors:,}" and row["decision"] == "rollback"
    assert row["verdict"] == "failed"

    summary = latest(artifact_key(service, "summary")).data
    assert "rolled back" in summary and f"| {failed.canary.errors:,} |" in summary


def test_an_approval_before_the_first_stage_shows_no_stage_that_never_ran():
    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=180, approval=True),
                                            Stage(weight=100, bake_seconds=180)], monitor_seconds=0)
    forms: list[str] = []

    def approver(pause, summary):
        forms.append(summary)
        return ApprovalAnswer(action="approve", approver="alice")

    result = run_on(env, spec, approver)
    assert result.outcome == "promoted"
    rows = [line for line in forms[0].splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    assert rows == [], f"the form for the approval before 5% shows a stage that never ran:\n{forms[0]}"


@flow
def run_on(env, spec, approver):
    from prefect.runtime import flow_run

    RUNS.append(flow_run.id)
    return run_progressive(env, spec, approver, owner="run-1", phased=False)


# The canary flow (the one `make demo` runs, deployed as `canary`) keeps no ledger, so no journal
# made its artifacts: a run ended with an empty Artifacts tab, the stages' verdicts only in its logs.

@flow
def canary_run(env, spec):
    from flows.canary import run_canary

    return run_canary(env, spec, auto_approve("frank"))


def run_artifacts(state) -> dict[str, str]:
    from prefect.client.schemas.filters import ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        found = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])))
    return {a.key: a.data for a in found}


@pytest.mark.parametrize("error_rate,outcome", [(0.001, "promoted"), (0.05, "rolled back")])
def test_a_canary_run_ends_with_its_stage_table(error_rate, outcome):
    env = fake_environment(canary_error_rate=error_rate)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (10, 100)], monitor_seconds=0)
    state = canary_run(env, spec, return_state=True)
    result = state.result()
    artifacts = run_artifacts(state)
    summary = artifacts.get(artifact_key(env.targets.canary_service, "summary"))
    assert summary is not None, f"the canary run left no summary artifact: {sorted(artifacts)}"
    assert IMAGE in summary and outcome in summary and result.reason in summary
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    assert len(rows) == len(result.stages) >= 1
    last = result.stages[-1]
    assert f"| {last.verdict.phase.value} |" in rows[-1] and f"| {last.canary.requests:,} |" in rows[-1]


def test_a_canary_rejection_comment_with_a_line_break_cannot_add_a_heading_to_its_summary():
    from flows.canary import run_canary

    comment = "latency looks off\n\n# Canary of webordinary/edit-container:2.0.0 promoted"

    @flow
    def rejected_canary(env, spec):
        return run_canary(env, spec, lambda pause, summary: ApprovalAnswer(action="reject", approver="bob",
                                                                            comment=comment))

    env = fake_environment(canary_error_rate=0.001)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=180),
                                            Stage(weight=100, bake_seconds=180, approval=True)], monitor_seconds=0)
    state = rejected_canary(env, spec, return_state=True)
    assert state.result().outcome == "rolled_back"
    summary = run_artifacts(state)[artifact_key(env.targets.canary_service, "summary")]
    assert [line for line in summary.splitlines() if line.startswith("# ")] == [f"# Canary of `{IMAGE}` rolled back"]


def test_a_canary_run_whose_summary_cannot_be_made_still_completes(monkeypatch):
    """The rollout is over when the summary is made: a failed run would have its hooks roll back."""
    import flows.canary

    api_refuses(monkeypatch, flows.canary, "create_markdown_artifact")
    env = fake_environment(canary_error_rate=0.001)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=100, bake_seconds=180)], monitor_seconds=0)
    state = canary_run(env, spec, return_state=True)
    assert state.is_completed(), state.message
    assert state.result().outcome == "promoted"


def test_a_rejection_comment_with_a_line_break_cannot_add_a_heading_to_the_summary():
    # The pause form's comment is a text area: the rollback's reason quotes it in the summary.
    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=180),
                                            Stage(weight=100, bake_seconds=180, approval=True)], monitor_seconds=0)
    comment = "latency looks off\n\n# Rollout of webordinary/edit-container:2.0.0 promoted"
    result = run_on(env, spec, lambda pause, summary: ApprovalAnswer(action="reject", approver="bob", comment=comment))
    assert result.outcome == "rolled_back"
    summary = latest(artifact_key(env.targets.canary_service, "summary")).data
    assert [line for line in summary.splitlines() if line.startswith("# ")] == [f"# Rollout of `{IMAGE}` rolled back"]
    assert "rejected by bob: latency looks off # Rollout of" in summary


# A run that ends a weekly phase "holding" left no summary (only promoted and rolled-back runs
# made one): its run page did not say that the phase passed, where the traffic now holds, or
# when the schedule starts the next phase.

@flow
def phased_run(env, spec):
    return run_progressive(env, spec, auto_approve("frank"), owner="run-1", actor="alice", phased=True)


def week_1_from_a_wednesday():
    from tests.flows.test_progressive_fakes import full_spec

    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    # Wednesday 10:00 UTC: the next calendar week (Monday 00:00) comes after the 3-day minimum.
    env.clock.t = dt.datetime(2027, 1, 13, 10, 0, tzinfo=dt.timezone.utc).timestamp()
    return env, full_spec()


def test_a_run_that_ends_a_weekly_phase_holding_says_so_in_its_summary():
    env, spec = week_1_from_a_wednesday()
    state = phased_run(env, spec, return_state=True)
    result = state.result()
    assert result.outcome == "holding"
    summary = run_artifacts(state).get(artifact_key(env.targets.canary_service, "summary"))
    assert summary is not None, "the holding run left no summary artifact"
    headings = [line for line in summary.splitlines() if line.startswith("# ")]
    assert headings == [f"# Rollout of `{IMAGE}` holding after week 1"], summary
    assert "95/5" in summary and result.reason in summary
    assert "week 2" in summary and "Mon 2027-01-18 00:00 UTC" in summary, "when the next phase is due"
    rows = [line for line in summary.splitlines() if line.startswith("| ") and not line.startswith("| stage")]
    assert len(rows) == len(result.stages) >= 1 and "| 95/5 |" in rows[-1], summary
    # The phase-complete message says when, too (it said only "on schedule").
    (told,) = [body for subject, body in env.notifier.messages if subject.startswith("Rollout phase complete")]
    assert "week 2 may start from Mon 2027-01-18 00:00 UTC" in told, told


def test_a_holding_run_whose_summary_cannot_be_made_still_holds(monkeypatch):
    """The phase is recorded complete: a failed run would have its hooks roll it back."""
    import flows.journal

    api_refuses(monkeypatch, flows.journal, "create_markdown_artifact")
    env, spec = week_1_from_a_wednesday()
    state = phased_run(env, spec, return_state=True)
    assert state.is_completed(), state.message
    assert state.result().outcome == "holding"
    assert env.router.get_weights().canary == 5


def test_a_promotion_whose_summary_cannot_be_made_is_kept_and_announced(monkeypatch):
    """The promotion is recorded, with its monitoring window owed, before the summary is made: a
    Prefect API error on the artifact failed the run, its hook rolled the good release back, and
    the "Rollout complete" page was never sent."""
    import flows.journal
    from rollway.phases import RolloutPhase

    api_refuses(monkeypatch, flows.journal, "create_markdown_artifact")
    env, state = healthy_rollout_with_its_hooks(monkeypatch, monitor_seconds=300)
    assert state.is_completed(), state.message
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.PROMOTED and env.router.get_weights().canary == 100
    subjects = [subject for subject, _ in env.notifier.messages]
    assert "Rollout complete: webordinary-edit-service-canary" in subjects and not any(
        s.startswith("Rollback") for s in subjects), subjects


def test_a_rollback_whose_summary_cannot_be_made_still_says_what_the_ledger_missed(monkeypatch):
    """An unrecorded rollback's end raises RollbackUnrecorded, telling people what the ledger
    does not show; an artifact error raised first replaced it with the API's error."""
    import flows.journal
    from rollway.ledger import RollbackUnrecorded

    api_refuses(monkeypatch, flows.journal, "create_markdown_artifact")
    from botocore.exceptions import ClientError

    def throttled(*args, **kwargs):
        raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}}, "UpdateItem")

    monkeypatch.setattr(flows.journal, "record_rollback_end", throttled)
    env = fake_environment(canary_error_rate=0.05)
    env.ledger = FakeLedger()
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)], monitor_seconds=0)

    @flow
    def bad_canary():
        return run_on(env, spec, auto_approve())

    state = bad_canary(return_state=True)
    with pytest.raises(RollbackUnrecorded):
        state.result()
    assert env.router.get_weights().canary == 0


def test_a_canary_whose_monitoring_summary_cannot_be_made_keeps_its_promotion(monkeypatch):
    """The `canary` flow keeps no ledger: its hooks roll back whenever the run fails. A Prefect
    API error on the monitoring window's artifact, made after the window passed, failed the run
    and its hook rolled the release back."""
    import flows.monitor
    from tests.flows.test_refusals import hooks_and_flows_see

    api_refuses(monkeypatch, flows.monitor, "create_markdown_artifact")
    env = fake_environment(canary_error_rate=0.001)
    hooks_and_flows_see(monkeypatch, env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)], monitor_seconds=300)
    from flows.canary import canary

    state = canary(spec=spec.model_dump(mode="json"), return_state=True)
    assert state.is_completed(), state.message
    assert state.result().outcome == "promoted" and env.router.get_weights().canary == 100
    assert not any(s.startswith("Rollback") for s, _ in env.notifier.messages), env.notifier.messages


def test_a_rollout_whose_progress_and_stage_tables_cannot_be_made_goes_on(monkeypatch):
    """A progress bar or a stage table the Prefect API refused (a 503 from the server) failed the
    run mid-rollout, and its hook rolled back a healthy canary. They are for people to read: the
    rollout goes on without them and the log says so."""
    import flows.journal
    from rollway.phases import RolloutPhase

    api_refuses(monkeypatch, flows.journal, "create_table_artifact", "create_progress_artifact",
                "update_progress_artifact")
    env, state = healthy_rollout_with_its_hooks(monkeypatch, monitor_seconds=0)
    assert state.is_completed(), state.message
    assert env.ledger.get(env.targets.canary_service).phase is RolloutPhase.PROMOTED
    assert not any(s.startswith("Rollback") for s, _ in env.notifier.messages), env.notifier.messages


def failing_once_promoted(env, after_seconds: float):
    """Metrics of a canary healthy through its stages that fails ``after_seconds`` into 100 %."""
    from rollway.fakes import FakeMetrics, steady

    healthy, failing = steady(50.0, 0.001, 0.001), steady(50.0, 0.001, 0.30)
    at_100: list[float] = []

    def behaviour(weights, t):
        if weights.canary == 100 and not at_100:
            at_100.append(t)
        return (failing if at_100 and t > at_100[0] + after_seconds else healthy)(weights, t)

    return FakeMetrics(env.router, behaviour)


def test_a_rollout_its_monitoring_window_rolled_back_is_not_a_promotion_in_its_summary():
    """The summary made at the promotion stayed the run's last word: a run its monitoring window
    rolled back returned rolled_back, and its summary, what people open first, still read
    "# Rollout of ... promoted"."""
    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    env.metrics = failing_once_promoted(env, after_seconds=400)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)], monitor_seconds=900)
    result = rollout(env, spec)
    assert result.outcome == "rolled_back", result.reason
    summary = latest(artifact_key(env.targets.canary_service, "summary")).data
    assert summary.splitlines()[0] == f"# Rollout of `{IMAGE}` rolled back", summary
    assert "monitoring after promotion" in summary and "over the 5% guardrail" in summary, summary


def test_a_rollout_whose_monitoring_window_was_unverified_says_so_in_its_summary():
    """As the `canary` flow's summary does: the window's checks could not read the metrics."""
    from rollway.fakes import FakeMetrics, steady
    from rollway.model import Observation
    from rollway.phases import RolloutPhase

    class BlindOncePromoted(FakeMetrics):
        def observe(self, start, end):
            record = env.ledger.get(env.targets.canary_service)
            if record is not None and record.phase is RolloutPhase.PROMOTED:
                return Observation(start=start, end=end, error="AccessDenied: not authorized to GetMetricData")
            return super().observe(start, end)

    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    env.metrics = BlindOncePromoted(env.router, steady(50.0, 0.001, 0.001))
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)], monitor_seconds=300)
    result = rollout(env, spec)
    assert result.outcome == "promoted" and result.monitoring_verified is False, result.reason
    summary = latest(artifact_key(env.targets.canary_service, "summary")).data
    assert summary.splitlines()[0] == f"# Rollout of `{IMAGE}` promoted (monitoring unverified)", summary
    assert "AccessDenied" in summary, summary


def _decommission_page_refused(env) -> None:
    from tests.flows.test_monitor_rollout import decommission_page_refused

    decommission_page_refused(env)


def _decommission_page_answer_lost(env) -> None:
    from tests.flows.test_window_page_answer_lost import decommission_pages_answer_lost

    decommission_pages_answer_lost(env)


@pytest.mark.parametrize("sns, said, heading, answer", [
    (_decommission_page_refused, "page was not sent", "a page of its monitoring window was NOT sent",
     "SNS topic 'webordinary-alerts' not found"),
    # Its answer lost (``AnswerLost``), SNS may have delivered the page: the heading said "NOT sent".
    (_decommission_page_answer_lost, "page was sent is not known",
     "whether a page of its monitoring window was sent is NOT known", "its answer lost (ReadTimeoutError"),
], ids=["refused", "answer lost"])
def test_a_rollout_whose_decommission_page_sns_refused_says_so_in_its_summary(sns, said, heading, answer):
    """The monitoring artifact and the run's result said the window's page was NOT sent (the old
    version decommissioned with nobody told); the summary, what people open first, read
    "promoted" with the last stage's reason."""
    from rollway.fakes import FakeMetrics, steady
    from rollway.spec import WeeklyPhase

    env = fake_environment(canary_error_rate=0.001)
    env.ledger = FakeLedger()
    env.metrics = FakeMetrics(env.router, steady(50.0, 0.001, 0.001))
    sns(env)
    spec = RolloutSpec(image=IMAGE, stages=[Stage(weight=w, bake_seconds=180) for w in (5, 100)], monitor_seconds=300,
                       phases=(WeeklyPhase(name="all", weights=(5, 100), decommission=True),))
    result = rollout(env, spec)
    assert result.outcome == "promoted" and said in result.reason, result.reason
    summary = latest(artifact_key(env.targets.canary_service, "summary")).data
    assert summary.splitlines()[0] == f"# Rollout of `{IMAGE}` promoted ({heading})", summary
    assert answer in summary, summary



@flow
def advance_run(env):
    from flows.progressive import advance

    return advance(env, auto_approve("frank"), owner="cron")


def test_the_run_that_promotes_a_weekly_rollout_shows_every_stage_in_its_summary():
    """Week 3's run judged 75 % and 100 % only: its summary said "all 5 stages passed" above a
    table of two rows, and the stages of weeks 1 and 2 were on no page of the run that promoted."""
    env, spec = week_1_from_a_wednesday()
    phased_run(env, spec)
    env.clock.sleep(7 * 86400)
    advance_run(env)
    env.clock.sleep(7 * 86400)
    state = advance_run(env, return_state=True)
    assert state.result().outcome == "promoted"
    summary = run_artifacts(state)[artifact_key(env.targets.canary_service, "summary")]
    for earlier in ("| 1/5 (5%) | 95/5 |", "| 2/5 (25%) | 75/25 |", "| 3/5 (50%) | 50/50 |"):
        assert earlier in summary, summary
    assert "| 4 | 25/75 |" in summary and "| 5 | 0/100 |" in summary, summary
