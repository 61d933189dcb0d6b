"""What is said of a "Finalized" notice owed (SNS refused it, recorded ``notice-failed``) where a
finalize run again refuses before its late send: the load balancer or the canary service changed
since the finalize. On the fakes."""

from __future__ import annotations

import logging

import pytest

from rollway.finalize import NOTICE_NOT_SENT, FinalizeRefused
from rollway.ledger import NOTICE_FAILED, Transition, new_rollout_id
from rollway.model import Weights
from rollway.reports import finalize_row, rollout_report
from tests.flows.test_finalize import promoted_on_fakes
from tests.flows.test_finalize_accept_breach import finalize_accepting

SNS = "AuthorizationError: not authorized to perform sns:Publish"


def _finalized_notice_owed():
    """A finalize done whose "Finalized" notice SNS refused, recorded as owed."""
    env, _ = promoted_on_fakes()
    assert finalize_accepting(env, None).outcome == "finalized"
    t = env.targets
    env.clock.sleep(5)
    env.ledger.record(t.canary_service, owner=None, now=env.clock.now(), transition=Transition(
        at=env.clock.now(), kind=NOTICE_FAILED, actor="dana", wall=env.wall(), comment=f"{NOTICE_NOT_SENT}{SNS}"))
    return env


def test_a_finalize_refused_for_a_load_balancer_moved_since_says_the_notice_owed_and_that_no_finalize_sends_it():
    """Finalized, its notice owed, then the traffic moved by hand: every finalize refuses before its
    late send, and the refusal said nothing of the notice, while status said a run again sends it."""
    env = _finalized_notice_owed()
    t = env.targets
    env.router.weights = Weights(stable=90, canary=10)
    env.deployer.update_service(t.canary_service, desired=2)
    before = env.ledger.get(t.canary_service).history

    with pytest.raises(FinalizeRefused, match="was finalized already, but since then the load balancer") as refused:
        finalize_accepting(env, None)
    said = " ".join(str(refused.value).split())
    assert f'That finalize\'s notice is owed as well: {NOTICE_NOT_SENT}{SNS} (dana\'s run' in said, said
    assert "no finalize sends it late while the load balancer and" in said, said
    assert f"subscribers yourself (topic {t.alert_topic})." in said, said
    assert "running finalize again sends it late" not in said, said
    assert said.endswith("Nothing was changed"), said
    assert env.ledger.get(t.canary_service).history == before


@pytest.mark.parametrize("said_by", [finalize_row, rollout_report], ids=["status", "report"])
def test_status_and_the_report_of_a_notice_owed_say_a_finalize_run_again_sends_it_only_as_the_finalize_left_things(
        said_by):
    """Status and the report, which do not read the load balancer, said "running finalize again sends
    it late" unconditionally: a finalize refuses, and sends nothing, once the traffic or the canary
    service was changed since."""
    env = _finalized_notice_owed()
    said = " ".join(said_by(env.ledger.get(env.targets.canary_service)).split())
    assert ("running finalize again sends it late once SNS takes it (it moves nothing), while this rollout is the "
            "service's newest (a finalize reads no other) and the load balancer sends all the traffic to the stable "
            "service") in said, said
    assert "tell the alert topic's subscribers yourself" in said, said


def test_a_finalize_run_again_as_the_finalize_left_things_says_plainly_that_a_run_again_sends_it_late():
    """A guard: where the run read the load balancer and services as the finalize left them and SNS
    refused the late notice again, its closing line says a run again sends it, without the caveat for
    a load balancer not seen (which is not its case)."""
    env = _finalized_notice_owed()

    def refused(subject, message):
        raise RuntimeError(SNS)

    env.notifier.notify = refused
    result = finalize_accepting(env, None)
    assert result.outcome == "already_finalized" and result.notice_refused, result
    closing = result.steps[-1]
    assert closing.endswith("running finalize again sends it late once SNS takes it (it moves nothing)"), closing


def test_the_report_of_a_rollout_another_followed_does_not_promise_that_a_finalize_sends_its_notice_owed():
    """A finalize reads the service's newest rollout alone: once another started, none sends the
    notice an older one owes, though the traffic is all on the stable service and the canary at 0
    again (the newer one finalized). The report of the older one said a run again sends it while
    the load balancer and the canary service are as the finalize left them."""
    env = _finalized_notice_owed()
    t = env.targets
    older = env.ledger.get(t.canary_service)
    now = env.clock.now()
    env.ledger.create(older.model_copy(update={"rollout_id": new_rollout_id(now, after=older.rollout_id),
                                               "history": ()}),
                      owner="process/test", now=now, lease_seconds=0)
    [said] = [" ".join(rollout_report(r).split()) for r in env.ledger.history(t.canary_service)
              if r.rollout_id == older.rollout_id]
    assert ("running finalize again sends it late once SNS takes it (it moves nothing), while this rollout is the "
            "service's newest (a finalize reads no other) and the load balancer") in said, said


def test_a_late_notice_sns_refuses_again_is_said_with_its_own_refusal_not_the_earlier_one():
    """SNS refused the late notice too, with another answer: the closing line (the log, the summary and
    the terminal) quoted the earlier refusal, dana's, as if it were still the newest, while the run's
    error and the ledger held this run's."""
    env = _finalized_notice_owed()
    again = "ThrottlingException: Rate exceeded"

    def refused(subject, message):
        raise RuntimeError(again)

    env.notifier.notify = refused
    result = finalize_accepting(env, None, actor="erin")
    assert result.outcome == "already_finalized" and again in (result.notice_refused or ""), result
    closing = result.steps[-1]
    assert again in closing and SNS not in closing, closing
    assert "erin's run" in closing and "dana's run" not in closing, closing


def test_a_late_notice_sns_refuses_again_is_logged_as_its_step_says_it(caplog):
    """The run's warning of a late send SNS refused read 'the late the "Finalized" notice was NOT sent':
    "the late " put before a sentence that begins with its own article."""
    env = _finalized_notice_owed()

    def refused(subject, message):
        raise RuntimeError("ThrottlingException: Rate exceeded")

    env.notifier.notify = refused
    with caplog.at_level(logging.WARNING):
        result = finalize_accepting(env, None, actor="erin")
    warned = [r.getMessage() for r in caplog.records
              if r.levelno == logging.WARNING and r.getMessage().startswith("finalize: ")]
    (step,) = [s for s in result.steps if s.startswith("late: ")]
    assert warned == [f"finalize: {step}"], (warned, step)


def test_a_finalize_refused_while_a_run_that_finalized_meanwhile_still_holds_the_lease_says_the_notice_owed(
        monkeypatch):
    """Another finalize took the lease after this run planned, finalized, had its "Finalized" notice
    refused and recorded so, and had not given the lease back yet: the refusal said that run had
    recorded no finalize of the rollout, and nothing of the notice owed, which the other refusals of
    a rollout finalized already say."""
    from tests.flows.test_finalize_race import raced

    env, _ = promoted_on_fakes()
    t = env.targets
    other = "flow-run/9e3b"

    def another_finalize_meanwhile():
        now = env.clock.now()
        env.ledger.acquire(t.canary_service, owner=other, now=now, lease_seconds=600, wall=env.wall())
        for kind, comment in (("finalize-start", None), ("finalized", None), (NOTICE_FAILED, f"{NOTICE_NOT_SENT}{SNS}")):
            env.ledger.record(t.canary_service, owner=other, now=now, transition=Transition(
                at=now, kind=kind, actor="dana", wall=env.wall(), comment=comment))

    raced(monkeypatch, another_finalize_meanwhile)
    with pytest.raises(FinalizeRefused) as refused:
        finalize_accepting(env, None, actor="erin")
    said = " ".join(str(refused.value).split())
    assert "has recorded no finalize of it" not in said, said
    assert "was finalized meanwhile" in said and "by dana" in said and other in said, said
    assert f"That finalize's notice is owed as well: {NOTICE_NOT_SENT}{SNS} (dana's run" in said, said
    assert f"(topic {t.alert_topic})." in said and said.endswith("Nothing was changed"), said


@pytest.mark.parametrize("live", [Weights(stable=100, canary=0), Weights(stable=90, canary=10)],
                         ids=["all-on-stable", "moved-since"])
def test_status_says_plainly_what_the_load_balancer_it_read_settles_of_a_notice_owed(capsys, live):
    """`rollway status` reads the load balancer and the service's newest rollout, yet its finalize row
    gave the late send the report's conditions ("while this rollout is the service's newest ... and
    the load balancer sends all the traffic to the stable service"): the weights it printed a few
    lines above settle the load balancer's, and the rollout it shows is the newest."""
    from types import SimpleNamespace

    from rollway.cli.ops import print_status

    env = _finalized_notice_owed()
    t = env.targets
    record = env.ledger.get(t.canary_service)
    print_status(SimpleNamespace(name=t.canary_service, targets=t), record, live, None, limit=1)
    row = " ".join(next(line for line in capsys.readouterr().out.splitlines() if line.startswith("finalize")).split())
    assert f"{NOTICE_NOT_SENT}{SNS} (dana's run" in row, row
    assert "while this rollout is the service's newest" not in row, row
    assert "the load balancer sends all the traffic" not in row, row
    if live.canary:
        assert f"no finalize sends it late while the load balancer holds {live} (stable/canary)" in row, row
        assert "running finalize again sends it late" not in row, row
    else:
        assert ("running finalize again sends it late once SNS takes it (it moves nothing), while the canary service "
                "is at 0 tasks, as the finalize left it") in row, row
