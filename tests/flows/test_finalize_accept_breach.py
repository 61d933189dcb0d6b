"""Finalizing a release whose monitoring window saw a breach it could not roll back, on a person's
recorded word: `rollway finalize --accept-breach "why"`, or the finalize deployment's
``accept_breach``.

Finalize refuses such a release, and rightly by default; but a team that judged the breach
harmless (a probe's 5xx, an incident on both versions) had no way to keep it: every finalize
refused, the canary service stayed at 100 % and every new rollout of the service was refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from prefect import flow

from flows.finalize import finalize, run_finalize
from flows.params import BreachAcceptance
from rollway.finalize import FinalizeRefused, unhandled_breach
from rollway.ledger import BREACH_ACCEPTED, BREACH_KEPT, Transition, utc
from rollway.model import Weights
from tests.flows.test_finalize import promoted_on_fakes, too_early

ALL_STABLE, ALL_CANARY = Weights(stable=100, canary=0), Weights(stable=0, canary=100)
SAID = "the guardrail was breached (error rate 9%), but another run had closed the window: the release stays in production"
WHY = "the 5xx were the load test's probe, not users: INC-42"


@flow
def finalize_accepting(env, accept_breach: BreachAcceptance, actor: str = "dana", unrecorded: bool = False):
    return run_finalize(env, actor=actor, stable_timeout_seconds=30, verify_timeout_seconds=5,
                        accept_breach=accept_breach, unrecorded=unrecorded)


def breached(env) -> Transition:
    """Record a breach the window could not roll back, as the monitor's run does; returns it."""
    env.clock.sleep(60)
    kept = Transition(at=env.clock.now(), kind=BREACH_KEPT, actor="run-7", comment=SAID)
    env.ledger.record(env.targets.canary_service, owner=None, now=kept.at, transition=kept)
    return kept


def status_of(env, capsys) -> str:
    from rollway.cli.ops import print_status

    capsys.readouterr()
    print_status(SimpleNamespace(name=env.targets.canary_service, targets=env.targets),
                 env.ledger.get(env.targets.canary_service), env.router.weights, None, limit=1)
    return " ".join(capsys.readouterr().out.split())


def test_a_breach_accepted_with_a_reason_is_recorded_and_the_release_finalized(capsys):
    env, release = promoted_on_fakes()
    breach = breached(env)
    with pytest.raises(FinalizeRefused, match="saw a breach") as refused:
        finalize_accepting(env, None)
    # The refusal names the way to keep the release, not only the rollback.
    assert '--accept-breach "REASON"' in str(refused.value) and "accept_breach" in str(refused.value)

    result = finalize_accepting(env, f"  {WHY}\n")  # as the flow's parameter takes it: stripped
    assert result.outcome == "finalized" and env.router.weights == ALL_STABLE
    record = env.ledger.get(env.targets.canary_service)
    kinds = [t.kind for t in record.history]
    assert kinds[-4:] == [BREACH_KEPT, BREACH_ACCEPTED, "finalize-start", "finalized"], kinds
    accepted = record.last_transition(BREACH_ACCEPTED)
    assert (accepted.actor, accepted.comment, accepted.breach_at) == ("dana", WHY, breach.at)
    assert any(f"dana accepts the breach recorded at {utc(breach.at)}" in step for step in result.steps), result.steps
    assert unhandled_breach(record) is None
    # People paged about the breach learn who kept the release, and why.
    [(_, body)] = [(subject, body) for subject, body in env.notifier.messages if subject.startswith("Finalized")]
    assert f"dana accepted the breach not rolled back of {utc(breach.at)} ({SAID}): {WHY}" in body, body

    # Status and the report say who accepted which breach and why, and no longer that it stands.
    status = status_of(env, capsys)
    assert "breach not rolled back:" not in status, status
    assert (f"breach accepted: dana at {utc(accepted.at)} accepted the breach of {utc(breach.at)} ({SAID}, run-7's "
            f"run): {WHY}") in status, status
    from rollway.reports import rollout_report

    report = rollout_report(record)
    assert "Breach not rolled back" not in report
    assert f"- **Breach accepted:** dana at {utc(accepted.at)} accepted the breach of {utc(breach.at)}" in report


def test_accepting_the_breach_publishes_its_incident_report_anew_saying_who_accepted_it_and_when():
    """The incident report written while the breach stood said the release was "still in production
    as far as the ledger knows": accepting it wrote no new one, and the Prefect UI kept showing that
    one as the newest under its key. The finalize writes it again, under the same key, from the
    ledger as its last write left it."""
    from flows.journal import artifact_key
    from tests.flows.test_reports_flow import artifacts_of

    env, _ = promoted_on_fakes()
    breach = breached(env)
    state = finalize_accepting(env, WHY, return_state=True)
    assert state.is_completed(), state.message
    incident = artifacts_of(state)[artifact_key(env.targets.canary_service, "incident-report")]
    accepted = env.ledger.get(env.targets.canary_service).last_transition(BREACH_ACCEPTED)
    assert incident.startswith(f"# Incident report: breach accepted of {env.targets.canary_service}"), incident
    assert f"**Accepted by:** dana at {utc(accepted.at)}, keeping the release in production: {WHY}" in incident
    assert f"**Recorded by:** run-7 at {utc(breach.at)}" in incident, incident
    assert "still in production" not in incident and "still going" not in incident, incident
    # Read after the finalize's last write: the traffic it moved is said.
    moved = incident.split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert "a finalize begun after the breach was recorded" in moved, moved


def _stable_update_refused(env):
    """Have ECS refuse the stable service's update (a finalize stops at that step); returns the
    deployer's own ``update_service``, to put back."""
    pointed = env.deployer.update_service

    def refused_on_stable(service, **changes):
        if service == env.targets.stable_service:
            raise RuntimeError("AccessDeniedException: not authorized to perform ecs:UpdateService")
        return pointed(service, **changes)

    env.deployer.update_service = refused_on_stable
    return pointed


def test_a_finalize_stopped_after_accepting_the_breach_publishes_its_incident_report_all_the_same():
    """The acceptance is recorded before the finalize moves anything: a run that stops at a step after
    it (ECS refusing the stable service's update here) leaves the breach accepted, and the newest
    incident report under its key must say so rather than "still in production" with the way out owed."""
    from flows.journal import artifact_key
    from tests.flows.test_reports_flow import artifacts_of

    env, _ = promoted_on_fakes()
    breached(env)
    _stable_update_refused(env)
    state = finalize_accepting(env, WHY, return_state=True)
    assert state.is_failed(), state.message
    incident = artifacts_of(state)[artifact_key(env.targets.canary_service, "incident-report")]
    accepted = env.ledger.get(env.targets.canary_service).last_transition(BREACH_ACCEPTED)
    assert f"**Accepted by:** dana at {utc(accepted.at)}, keeping the release in production: {WHY}" in incident
    assert "still in production" not in incident and "The way out of the breach" not in incident, incident
    moved = incident.split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert "a finalize began after the breach was recorded" in moved, moved


def test_an_acceptance_where_no_breach_stands_is_refused_and_changes_nothing():
    env, _ = promoted_on_fakes()
    before = env.ledger.get(env.targets.canary_service)
    with pytest.raises(FinalizeRefused, match="no breach not rolled back stands") as refused:
        finalize_accepting(env, WHY)
    assert "Nothing was changed" in str(refused.value) and "without --accept-breach" in str(refused.value)
    assert env.ledger.get(env.targets.canary_service) == before and env.router.weights == ALL_CANARY


def test_an_acceptance_covers_the_breach_it_named_not_one_recorded_after_it():
    env, _ = promoted_on_fakes()
    first = breached(env)
    t = env.targets
    env.ledger.record(t.canary_service, owner=None, now=first.at + 1, transition=Transition(
        at=first.at + 1, kind=BREACH_ACCEPTED, actor="dana", comment=WHY, breach_at=first.at))
    assert unhandled_breach(env.ledger.get(t.canary_service)) is None
    second = breached(env)
    assert unhandled_breach(env.ledger.get(t.canary_service)) == second
    with pytest.raises(FinalizeRefused, match="saw a breach"):
        finalize_accepting(env, None)
    assert env.router.weights == ALL_CANARY


def test_a_breach_recorded_while_finalize_acted_is_not_accepted_by_it():
    """Finalize read the ledger with one breach; another is recorded before its acceptance is
    written: the write is refused (the ledger changed), nothing moves, and the person sees the
    second breach on the next run."""
    env, _ = promoted_on_fakes()
    breached(env)
    ledger, t = env.ledger, env.targets
    acquire = ledger.acquire

    def meanwhile(*args, **kwargs):
        held = acquire(*args, **kwargs)
        ledger.record(t.canary_service, owner=None, now=env.clock.now(), transition=Transition(
            at=env.clock.now() + 5, kind=BREACH_KEPT, actor="run-8", comment=SAID))
        return held  # as this run took it: the breach came just after

    ledger.acquire = meanwhile
    with pytest.raises(FinalizeRefused, match="the ledger changed after this run read it"):
        finalize_accepting(env, WHY)
    record = ledger.get(t.canary_service)
    assert record.last_transition(BREACH_ACCEPTED) is None and env.router.weights == ALL_CANARY


def test_an_acceptance_with_unrecorded_is_refused_before_anything_is_read():
    env, _ = promoted_on_fakes()
    env.router = None  # read, it would fail
    with pytest.raises(FinalizeRefused, match="accept_breach applies only to a promotion the ledger records"):
        finalize_accepting(env, WHY, unrecorded=True)


def test_the_flow_refuses_a_blank_acceptance_before_loading_anything(monkeypatch):
    import flows.finalize

    monkeypatch.setattr(flows.finalize, "load_environment", too_early)
    state = finalize(accept_breach=" \n ", return_state=True)
    assert state.is_failed() and "Validation of flow parameters failed" in state.message, state.message


@pytest.mark.parametrize(("options", "message"), [
    (["--accept-breach", "   "], "--accept-breach must say why the breach is accepted"),
    (["--accept-breach", "x", "--unrecorded"], "accept_breach applies only to a promotion the ledger records"),
])
def test_rollway_finalize_refuses_a_bad_acceptance_before_any_call(monkeypatch, capsys, options, message):
    import flows.env
    from rollway.cli import app, ops

    monkeypatch.setattr(ops, "load_account", too_early)
    monkeypatch.setattr(flows.env, "load_clients", too_early)
    assert app(["finalize", *options], result_action="return_value") == 2
    assert message in " ".join(capsys.readouterr().err.split())


def test_rollway_finalize_accept_breach_on_the_embedded_aws_records_it_and_finalizes(aws, capsys):
    """The command: refused without the acceptance, saying how to give it; with it, each step printed,
    the acceptance first, and the release finalized (one code path with the deployment: the flow)."""
    from rollway.cli import app
    from tests.flows.test_finalize import promote_by_hand, read_back, saved_blocks

    blocks = saved_blocks(aws)
    env, _, _ = promote_by_hand(aws, "start", "promote", "watched")
    t = aws.targets
    kept = Transition(at=env.clock.now(), kind=BREACH_KEPT, actor="run-7", comment=SAID)
    env.ledger.record(t.canary_service, owner=None, now=kept.at, transition=kept)
    options = ["--actor", "carol", "--targets-block", blocks, "--credentials-block", blocks]
    assert app(["finalize", *options], result_action="return_value") == 1
    err = " ".join(capsys.readouterr().err.split())
    assert "saw a breach and could not roll it back" in err and '--accept-breach "REASON"' in err, err
    assert read_back(aws)[0] == ALL_CANARY

    assert app(["finalize", *options, "--accept-breach", WHY], result_action="return_value") == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "1. recorded 'breach-accepted' on rollout" in out and f"carol accepts the breach recorded at {utc(kept.at)}" in out, out
    assert "2. recorded 'finalize-start'" in out and "the next rollout can start" in out, out
    assert read_back(aws)[0] == ALL_STABLE
    accepted = env.ledger.get(t.canary_service).last_transition(BREACH_ACCEPTED)
    assert (accepted.actor, accepted.comment, accepted.breach_at) == ("carol", WHY, kept.at)


def test_a_breach_recorded_after_the_release_was_finalized_says_it_is_on_the_stable_service_and_no_accept_is_dropped():
    env, release = promoted_on_fakes()
    assert finalize_accepting(env, None).outcome == "finalized"
    breach = breached(env)  # the window's run that lost the race records its breach after the finalize
    before = env.ledger.get(env.targets.canary_service)

    with pytest.raises(FinalizeRefused, match="saw a breach") as refused:
        finalize_accepting(env, None)
    said = str(refused.value)
    # The release is the stable service's: the `rollback` flow would take nothing out of production.
    assert "before the breach was recorded" in said and "finalized onto the stable service" in said, said
    assert "Finalize would put the release" not in said and "still on the previous version" not in said, said
    assert "out again as a new rollout" in said and "the `rollback` flow would take nothing out" in said, said

    # An acceptance is refused with that reason, never taken and dropped ("already finalized").
    with pytest.raises(FinalizeRefused, match="was not recorded: it lets a finalize past a breach"):
        finalize_accepting(env, WHY)
    after = env.ledger.get(env.targets.canary_service)
    assert after.history == before.history and after.history[-1].at == breach.at
    assert env.router.weights == ALL_STABLE


def test_the_incident_report_of_an_accepted_breach_is_written_once_the_rollout_s_lease_is_given_back(monkeypatch):
    """The report is an artifact on the Prefect API, a network write that needs no lease: written
    while finalize still held the rollout's, a slow API kept every other finalize (and the rollout's
    own runs) refused for as long as it took, and one slower than the lease had the lease's release
    refused as sent too late."""
    import flows.finalize

    env, _ = promoted_on_fakes()
    breached(env)
    publish, holders = flows.finalize.publish_incident, []

    def publishing(record, targets, **given):
        holders.append(env.ledger.get(targets.canary_service).owner)
        return publish(record, targets, **given)

    monkeypatch.setattr(flows.finalize, "publish_incident", publishing)
    assert finalize_accepting(env, WHY).outcome == "finalized"
    assert holders == [None], holders


@pytest.mark.parametrize("died", ["after recording the acceptance", "after recording the finalize done"])
def test_a_finalize_run_again_after_one_that_died_before_its_incident_report_publishes_it(monkeypatch, died):
    """The acceptance is in the ledger, the report written while the breach stood is the newest under
    its key (still in production, the `rollback` flow as the way out): the run that recorded the
    acceptance died before writing the report anew, and the next finalize, which has no acceptance of
    its own to record, wrote none. It writes it, under the same key."""
    import flows.finalize
    from flows.journal import artifact_key
    from tests.flows.test_reports_flow import artifacts_of

    env, _ = promoted_on_fakes()
    breach = breached(env)
    t = env.targets
    if died == "after recording the acceptance":
        env.ledger.record(t.canary_service, owner=None, now=breach.at + 1, transition=Transition(
            at=breach.at + 1, kind=BREACH_ACCEPTED, actor="dana", comment=WHY, breach_at=breach.at))
        outcome = "finalized"
    else:
        with monkeypatch.context() as dying:
            dying.setattr(flows.finalize, "_report_accepted", lambda *args, **kwargs: None)
            assert finalize_accepting(env, WHY).outcome == "finalized"
        outcome = "already_finalized"
    state = finalize_accepting(env, None, actor="erin", return_state=True)
    assert state.is_completed(), state.message
    assert state.result().outcome == outcome
    incident = artifacts_of(state).get(artifact_key(t.canary_service, "incident-report"))
    assert incident is not None, f"no incident report: {artifacts_of(state)}"
    accepted = env.ledger.get(t.canary_service).last_transition(BREACH_ACCEPTED)
    assert incident.startswith(f"# Incident report: breach accepted of {t.canary_service}"), incident
    assert f"**Accepted by:** dana at {utc(accepted.at)}, keeping the release in production: {WHY}" in incident


def test_a_breach_recorded_after_a_finalize_whose_notice_is_owed_says_the_notice_and_that_no_finalize_sends_it():
    """The finalize done, its "Finalized" notice refused by SNS (owed: a finalize run again sends it
    late), then the window's run records a breach: every finalize refuses from then on, before its late
    send. The refusal said the breach and its way out only, and on-call, who expect that notice, were
    left to learn from `rollway status` that it is owed and that no run will send it."""
    from rollway.finalize import NOTICE_NOT_SENT
    from rollway.ledger import NOTICE_FAILED

    env, _ = promoted_on_fakes()
    assert finalize_accepting(env, None).outcome == "finalized"
    t = env.targets
    env.clock.sleep(5)
    sns = "AuthorizationError: not authorized to perform sns:Publish"
    env.ledger.record(t.canary_service, owner=None, now=env.clock.now(), transition=Transition(
        at=env.clock.now(), kind=NOTICE_FAILED, actor="dana", wall=env.wall(), comment=f"{NOTICE_NOT_SENT}{sns}"))
    breached(env)
    with pytest.raises(FinalizeRefused, match="saw a breach") as refused:
        finalize_accepting(env, None)
    said = " ".join(str(refused.value).split())
    assert f'the "Finalized" notice was NOT sent, nobody was told: {sns} (dana\'s run' in said, said
    assert "no finalize sends it late" in said and f"subscribers yourself (topic {t.alert_topic})." in said, said
    assert said.endswith("Nothing was changed"), said


def test_a_later_finalize_that_cannot_read_the_ledger_again_says_from_what_it_wrote_the_incident_report(
        monkeypatch, caplog):
    """A finalize that finds the release finalized writes the report of the breach accepted earlier
    from the rollout as it read it at its start when the ledger cannot be read again: its warning said
    "written from the rollout as the acceptance left it", and a person looked in the report for the
    rollout before its finalize, where it says the release finalized onto the stable service."""
    import logging

    import flows.finalize
    from flows.journal import artifact_key
    from tests.flows.test_reports_flow import artifacts_of

    env, _ = promoted_on_fakes()
    breached(env)
    with monkeypatch.context() as dying:  # the accepting run died before its report: a later one writes it
        dying.setattr(flows.finalize, "_report_accepted", lambda *args, **kwargs: None)
        assert finalize_accepting(env, WHY).outcome == "finalized"
    newest, reads = flows.finalize._newest, []

    def throttled_again(*args):
        reads.append(args)
        if len(reads) > 1:
            raise RuntimeError("ProvisionedThroughputExceededException: Rate of requests exceeds the allowed throughput")
        return newest(*args)

    monkeypatch.setattr(flows.finalize, "_newest", throttled_again)
    with caplog.at_level(logging.WARNING):
        state = finalize_accepting(env, None, actor="erin", return_state=True)
    assert state.is_completed() and state.result().outcome == "already_finalized", state.message
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("could not read the ledger again")]
    assert len(said) == 1 and "ProvisionedThroughputExceededException" in said[0], said
    assert "as the acceptance left it" not in said[0], said
    assert "written from the rollout as this run found it" in said[0], said
    incident = artifacts_of(state)[artifact_key(env.targets.canary_service, "incident-report")]
    assert "the stable service runs the release that breached" in incident, incident


@pytest.mark.parametrize("finisher_dies", [False, True], ids=["finishing-run", "run-after-a-finisher-that-died"])
def test_a_finalize_that_finishes_one_stopped_after_accepting_the_breach_writes_the_incident_report_anew(
        monkeypatch, finisher_dies):
    """The accepting run stopped at a step (ECS refusing the stable service's update) and wrote the
    report as it left the rollout: a finalize begun, the stable service "may run" the release. The
    run that finishes the finalize records it finalized: its report says so, where the one left
    newest went on saying the finalize was only begun, "as the ledger last recorded it". When that
    run dies before its report, the next, which finds the rollout finalized, writes it: left as it
    was, the newest report went on saying the finalize was only begun."""
    import flows.finalize
    from flows.journal import artifact_key
    from tests.flows.test_reports_flow import artifacts_of

    env, _ = promoted_on_fakes()
    breached(env)
    pointed = _stable_update_refused(env)
    assert finalize_accepting(env, WHY, return_state=True).is_failed()
    env.deployer.update_service = pointed
    if finisher_dies:
        with monkeypatch.context() as dying:
            dying.setattr(flows.finalize, "_report_accepted", lambda *args, **kwargs: None)
            assert finalize_accepting(env, None, actor="erin").outcome == "finalized"
    state = finalize_accepting(env, None, actor="frank", return_state=True)
    outcome = "already_finalized" if finisher_dies else "finalized"
    assert state.is_completed() and state.result().outcome == outcome, state.message
    incident = artifacts_of(state).get(artifact_key(env.targets.canary_service, "incident-report"))
    assert incident is not None, f"no incident report: {artifacts_of(state)}"
    moved = incident.split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert "the stable service runs the release that breached (put there by a finalize begun after" in moved, moved
    assert "may run the release" not in moved, moved
