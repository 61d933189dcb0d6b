"""The incident report of a promotion whose monitoring window saw a guardrail breached and could not
roll it back: the release that breached stays in production, which is an incident as much as a
rollback is (and more, as nothing took it out)."""

from __future__ import annotations

import pytest

from rollway.ledger import BREACH_ACCEPTED, BREACH_KEPT, Transition, utc
from rollway.phases import RolloutPhase
from rollway.reports import duration, incident_report, rollout_report, wants_incident
from tests.unit.test_reports import (T0, IMAGE, SERVICE, guardrail_rollback, next_steps, passed, promoted_record,
                                     record, shift, started, w)

SAW = "monitoring after promotion: canary error rate 6.00% (60/1000) is over the 5% guardrail"


def breach_standing(*, accepted: bool = False):
    """Promoted at T0 + 2200 (a 3600-s window, to T0 + 5800), the window closed by another run's
    decommission, and a look of the monitor that saw the guardrail breached could not roll back."""
    history = [started(), shift(60, 5, 0), passed(700, 0), shift(710, 100, 1, 5),
               Transition(at=T0 + 2200, kind="promote", actor="alice", to_weights=w(100), comment="every stage passed"),
               Transition(at=T0 + 5800, kind="decommission", actor="run-9", comment="60 minutes of monitoring passed"),
               Transition(at=T0 + 5810, kind=BREACH_KEPT, actor="monitor",
                          comment=f"{SAW}; not rolled back: the monitoring window was closed by run-9. The release "
                                  "stays in production")]
    if accepted:
        history.append(Transition(at=T0 + 6000, kind=BREACH_ACCEPTED, actor="dana", breach_at=T0 + 5810,
                                  comment="the 5xx were our load test's probe"))
    return record(history, RolloutPhase.PROMOTED, stages=(5, 100), weights=w(100))


def test_only_a_rollback_or_a_breach_standing_or_accepted_wants_an_incident_report():
    assert wants_incident(breach_standing())
    assert wants_incident(guardrail_rollback()) and wants_incident(guardrail_rollback(finished=False))
    # Accepted, the breach's incident report is written again, saying so: the one written while it
    # stood said "still in production" and stayed the newest, untrue once a person kept the release.
    assert wants_incident(breach_standing(accepted=True))
    assert not wants_incident(promoted_record())
    assert not wants_incident(record([started(), shift(60, 5, 0)], RolloutPhase.PAUSED))


def test_a_breach_not_rolled_back_gets_an_incident_report_saying_the_release_is_still_in_production():
    """The rollout report said "breach not rolled back", and no incident report was written: the
    flow and `rollway report` wrote one only for a rollback, so the incident that was still going on
    had no trigger, exposure or next steps written anywhere."""
    text = incident_report(breach_standing(), alert_topic="webordinary-alerts")
    assert text.startswith(f"# Incident report: breach not rolled back of {SERVICE}, rollout "), text
    assert "still in production" in text.split("## What triggered it", 1)[0], text
    trigger = text.split("## What triggered it", 1)[1].split("## Exposure", 1)[0]
    assert "**Trigger:** the post-promotion monitor's absolute guardrail" in trigger, trigger
    assert f"**Recorded by:** monitor at {utc(T0 + 5810)}" in trigger, trigger
    assert f"**Reason:** {SAW}; not rolled back" in trigger, trigger
    exposure = text.split("## Exposure", 1)[1].split("## Traffic moved back", 1)[0]
    assert f"**First traffic to the new version:** {utc(T0 + 60)} (5%)" in exposure, exposure
    assert "**Highest canary weight:** 100%" in exposure, exposure
    # From the first shift to the window's end (the promotion's time plus the spec's 3600 s), and on.
    assert f"**Exposed for:** at least {duration(5800 - 60)}" in exposure, exposure
    assert f"to {utc(T0 + 5800)}, the monitoring window's end" in exposure and "still in production" in exposure
    assert f"**At each weight:** 5% for {duration(650)}, then 100% from {utc(T0 + 710)}, still in production" in (
        exposure), exposure
    moved = text.split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert "**Traffic moved back:** none recorded" in moved and "100%" in moved, moved
    assert f"`{IMAGE}` was promoted" in text and "was rolled back" not in text, text
    steps = next_steps(text)
    assert "Finish the rollback" not in steps
    first = steps.strip().splitlines()[0]
    # The way out, as the README names it: the rollback flow (its deployment), or finalize's acceptance.
    assert first.startswith("- [ ] The way out of the breach: run the `rollback` flow (the rollback deployment)"), first
    assert '`rollway finalize --accept-breach "REASON"` (the finalize deployment: `accept_breach`)' in first, first
    assert f"`{SERVICE}-monitoring`" in text.split("## Evidence", 1)[1]
    assert "Breach not rolled back" in text.split("## Notification", 1)[1], text


def test_an_accepted_breach_s_incident_report_says_who_accepted_it_and_when_and_no_longer_that_it_goes_on():
    """Accepted (finalize's accept_breach), no incident report was written: the Prefect UI kept the
    one written while the breach stood, saying the release was "still in production as far as the
    ledger knows" and that the way out was the `rollback` flow, after a person had kept it on purpose."""
    text = incident_report(breach_standing(accepted=True), alert_topic="webordinary-alerts")
    assert text.startswith(f"# Incident report: breach accepted of {SERVICE}, rollout "), text
    assert "still in production" not in text and "still going" not in text, text
    opening = text.split("## What triggered it", 1)[0]
    assert f"**dana accepted the breach** at {utc(T0 + 6000)}" in opening, opening
    trigger = text.split("## What triggered it", 1)[1].split("## Exposure", 1)[0]
    assert (f"**Accepted by:** dana at {utc(T0 + 6000)}, keeping the release in production: the 5xx were our load "
            "test's probe") in trigger, trigger
    exposure = text.split("## Exposure", 1)[1].split("## Traffic moved back", 1)[0]
    assert f"**Exposed for:** at least {duration(5800 - 60)}" in exposure, exposure
    assert f"kept in production since dana accepted the breach at {utc(T0 + 6000)}" in exposure, exposure
    moved = text.split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert f"none recorded: dana accepted the breach at {utc(T0 + 6000)} and kept the release" in moved, moved
    steps = next_steps(text)
    assert "The way out of the breach" not in steps and "`rollback` flow" not in steps, steps
    assert f"- [x] Decided: dana accepted the breach at {utc(T0 + 6000)} and kept the release" in steps, steps
    # The rollout report says the acceptance, as before.
    assert "**Breach accepted:**" in rollout_report(breach_standing(accepted=True))


def test_an_accepted_breach_finalized_since_says_the_finalize_came_after_the_breach():
    """Accepted and finalized (finalize's accept_breach does both): the traffic line said the stable
    service ran the release "put there by a finalize begun before the breach was recorded"."""
    rec = breach_standing(accepted=True)
    finalized = [Transition(at=T0 + 6001, kind="finalize-start", actor="dana"),
                 Transition(at=T0 + 6100, kind="finalized", actor="dana", from_weights=w(100), to_weights=w(0))]
    rec = rec.model_copy(update={"history": (*rec.history, *finalized), "weights": w(0)})
    text = incident_report(rec)
    moved = text.split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert "before the breach was recorded" not in moved, moved
    assert "a finalize begun after the breach was recorded" in moved and "takes 100% of the traffic" in moved, moved
    assert "still" not in text.split("## Stages", 1)[0], text


def test_a_breach_recorded_after_the_release_was_finalized_does_not_say_the_canary_still_takes_it():
    """Finalized (the release on the stable service, 100/0) before the breach was recorded: "the new
    version still takes 0% of the traffic" said users were off the release that breached."""
    rec = breach_standing()
    finalized = [Transition(at=T0 + 5805, kind="finalize-start", actor="carol"),
                 Transition(at=T0 + 5806, kind="finalized", actor="carol", from_weights=w(100), to_weights=w(0))]
    rec = rec.model_copy(update={"history": (*rec.history[:-1], *finalized, rec.history[-1]), "weights": w(0)})
    moved = incident_report(rec).split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert "takes 0%" not in moved, moved
    assert "the stable service runs the release that breached" in moved, moved
    assert "**still in production**" in incident_report(rec)


def test_a_breach_past_a_finalize_begun_does_not_say_nothing_moved_the_traffic_back():
    """Past a finalize begun before the breach was recorded, the way out the report names first (the
    `rollback` flow, while the stable service still runs the previous version) is recorded on no
    rollout (``HISTORY_KINDS``), nor is a rollback whose look at the services failed: the ledger
    stays as it was after the traffic went back. The report said the exposure was "still going ...
    nothing moved the traffic back" and "Traffic moved back: not moved", which the ledger cannot know."""
    rec = breach_standing()
    began = Transition(at=T0 + 5805, kind="finalize-start", actor="carol")
    rec = rec.model_copy(update={"history": (*rec.history[:-1], began, rec.history[-1])})
    text = incident_report(rec)
    exposure = text.split("## Exposure", 1)[1].split("## Traffic moved back", 1)[0]
    assert "nothing moved the traffic back" not in exposure, exposure
    assert "still going as far as the ledger knows: no rollback of it is recorded" in exposure, exposure
    moved = text.split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert "not moved" not in moved and "**Traffic moved back:** none recorded" in moved, moved
    assert "`rollway status` reads the load balancer now" in exposure + moved
    opening = text.split("## What triggered it", 1)[0]
    assert "**still in production** as far as the ledger knows" in opening, opening


def _notification(rec) -> str:
    return incident_report(rec, alert_topic="webordinary-alerts").split("## Notification", 1)[1].split("\n## ", 1)[0]


def _page_refused(at: float, answer: str, subject: str = f"Breach not rolled back: {SERVICE}", *,
                  lost: bool = False) -> Transition:
    """The entry the monitor's run writes when SNS refused a window's page, or lost its answer
    (``flows.monitor._skip``)."""
    from rollway.window_page import WINDOW_PAGE_REFUSED, page_comment

    return Transition(at=at, kind=WINDOW_PAGE_REFUSED, actor="monitor", wall=at,
                      comment=page_comment(subject, answer, lost=lost))


LOST = "SNS Publish sent, and its answer lost (Read timeout on endpoint URL): AWS may have acted on it"


def _answer_lost(at: float, shape: str) -> Transition:
    """A page whose SNS answer was lost, as this version writes it ("new") or as versions before it
    did ("old": the opening of a refusal, SNS's error saying its answer was lost)."""
    from rollway.window_page import WINDOW_PAGE_REFUSED

    if shape == "new":
        return _page_refused(at, LOST, lost=True)
    return Transition(at=at, kind=WINDOW_PAGE_REFUSED, actor="monitor", wall=at,
                      comment=f'the "Breach not rolled back: {SERVICE}" page was not sent: {LOST}')


def _with(rec, *entries: Transition, weights=None):
    return rec.model_copy(update={"history": (*rec.history, *entries), "weights": weights or rec.weights})


DENIED = "AuthorizationError: not authorized to perform SNS:Publish"


def test_a_breach_page_sns_refused_is_said_not_sent_with_its_reason():
    said = _notification(_with(breach_standing(), _page_refused(T0 + 5811, DENIED)))
    assert f"**Page not sent:** {DENIED}" in said, said
    assert "Paged on" not in said and "paged on" not in said, said


def test_a_refused_breach_page_stays_said_after_the_breach_was_accepted_and_finalized():
    """A finalize begun after the refusal made it old news for ``window_page_refused`` (a window's
    later end pages anew): the report then said "Paged on ..." of a page nobody received, and no
    later end of the window sends a breach's page again."""
    rec = _with(breach_standing(), _page_refused(T0 + 5811, DENIED),
                Transition(at=T0 + 6000, kind="breach-accepted", actor="dana", breach_at=T0 + 5810, comment="probe"),
                Transition(at=T0 + 6001, kind="finalize-start", actor="dana"),
                Transition(at=T0 + 6100, kind="finalized", actor="dana", from_weights=w(100), to_weights=w(0)),
                weights=w(0))
    said = _notification(rec)
    assert f"**Page not sent:** {DENIED}" in said and "Paged on" not in said, said


def test_a_refused_breach_page_stays_said_after_a_later_end_of_the_window():
    """Another run's end of the window recorded after the refusal (a "watched") made it old news for
    ``window_page_refused``, a later end's page being a new one: but no end of the window pages the
    breach again, and the report said "Paged on ..." of the page nobody received."""
    rec = _with(breach_standing(), _page_refused(T0 + 5811, DENIED),
                Transition(at=T0 + 5900, kind="watched", actor="run-10", comment="an extra look passed"))
    said = _notification(rec)
    assert f"**Page not sent:** {DENIED}" in said and "Paged on" not in said, said


def test_another_pages_refusal_is_not_said_as_the_breach_s():
    """A "Monitoring unverified" page refused after the breach was recorded (another run's end of the
    window) is no word on the breach's page: the report gave it as the breach page's refusal."""
    said = _notification(_with(breach_standing(), _page_refused(T0 + 5811, DENIED,
                                                                subject=f"Monitoring unverified: {SERVICE}")))
    assert "Monitoring unverified" not in said and "**Page not sent:**" not in said, said
    assert "Breach not rolled back" in said, said


@pytest.mark.parametrize("shape", ["new", "old"])
def test_a_breach_page_whose_answer_was_lost_is_not_said_sent_nor_not_sent(shape):
    said = _notification(_with(breach_standing(), _answer_lost(T0 + 5811, shape)))
    assert f"**Page not confirmed:** {LOST}" in said, said
    assert "not sent" not in said and "Paged on" not in said, said
    assert f"whether the `Breach not rolled back: {SERVICE}` page on `webordinary-alerts` was sent is not known" in (
        said), said
    assert "SNS's answer was lost: it may have taken it" in said and "delivery logs" in said, said


def test_a_breach_page_with_nothing_recorded_of_it_is_said_inferred():
    """Nothing of the page is recorded when SNS took it (no message id is kept), nor when the run died
    before it paged, nor when its refusal could not be recorded: "Paged on" claimed more than that."""
    said = _notification(breach_standing())
    assert said.strip().startswith("Inferred: paged on `webordinary-alerts` by monitor's run"), said
    assert "died" in said and "could not record" in said, said


def _status(rec, capsys) -> str:
    from types import SimpleNamespace

    from rollway.cli.ops import print_status
    from rollway.targets import Targets

    print_status(SimpleNamespace(name="svc-canary", targets=Targets()), rec, rec.weights, None, limit=1)
    return " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("later", [
    (Transition(at=T0 + 5900, kind="watched", actor="run-10", comment="an extra look passed"),),
    (Transition(at=T0 + 6000, kind="breach-accepted", actor="dana", breach_at=T0 + 5810, comment="probe"),
     Transition(at=T0 + 6001, kind="finalize-start", actor="dana"),
     Transition(at=T0 + 6100, kind="finalized", actor="dana", from_weights=w(100), to_weights=w(0))),
], ids=["a later end of the window", "accepted and finalized"])
def test_status_and_the_rollout_report_say_a_refused_breach_page_as_the_incident_report_does(later, capsys):
    """The incident report reads the breach page's own refusal, which no later end of the window nor a
    finalize sends again: `rollway status` and the rollout report took it for old news after either,
    and said nothing of it where the incident report said "Page not sent"."""
    rec = _with(breach_standing(), _page_refused(T0 + 5811, DENIED), *later,
                weights=w(0) if len(later) > 1 else None)
    page = f'the "Breach not rolled back: {SERVICE}" page was not sent: {DENIED}'
    assert f"**Page not sent:** {DENIED}" in _notification(rec)
    report = " ".join(rollout_report(rec).split())
    assert f"**Window page not sent:** {page}" in report, report
    said = _status(rec, capsys)
    assert page in said and "no run sends it again" in said, said
    # No later look sends a breach's page anew: said of it, that read as if one might have.
    assert "a later look at the window pages anew" not in said, said


def test_status_does_not_give_another_page_s_refusal_as_the_breach_page_s_nor_hide_the_breach_page_s(capsys):
    """A "Monitoring unverified" page refused before a later end of the window is old news, as before;
    the breach page's refusal is not, and it is the one said."""
    rec = _with(breach_standing(), _page_refused(T0 + 5811, DENIED),
                _page_refused(T0 + 5850, "SNS topic 'alerts' not found", subject=f"Monitoring unverified: {SERVICE}"),
                Transition(at=T0 + 5900, kind="watched", actor="run-10", comment="an extra look passed"))
    said = _status(rec, capsys)
    assert f'the "Breach not rolled back: {SERVICE}" page was not sent: {DENIED}' in said, said
    assert "Monitoring unverified" not in said, said


def test_a_finalized_notice_owed_when_a_breach_is_recorded_after_the_finalize_is_said_as_sent_by_no_run(capsys):
    """Finalized with its "Finalized" notice refused, then a breach recorded: every finalize refuses
    (``unhandled_breach``) before its late send of the notice, and none can accept the breach past the
    finalize done. Status and the report stopped saying the notice was owed at all, and
    ``notice_not_sent`` said "running finalize again sends it late"."""
    from rollway.finalize import NOTICE_NOT_SENT, notice_not_sent
    from rollway.ledger import NOTICE_FAILED

    refused = f"{NOTICE_NOT_SENT}AuthorizationError: not authorized to perform SNS:Publish"
    finalized = [Transition(at=T0 + 5805, kind="finalize-start", actor="carol"),
                 Transition(at=T0 + 5806, kind="finalized", actor="carol", from_weights=w(100), to_weights=w(0)),
                 Transition(at=T0 + 5807, kind=NOTICE_FAILED, actor="carol", comment=refused)]
    rec = breach_standing()
    rec = rec.model_copy(update={"history": (*rec.history[:-1], *finalized, rec.history[-1]), "weights": w(0)})
    unsent = notice_not_sent(rec)
    assert unsent is not None and "running finalize again" not in unsent, unsent
    assert "no finalize sends it late" in unsent and "tell the alert topic's subscribers yourself" in unsent, unsent
    outcome = " ".join(rollout_report(rec).split("**Outcome:**", 1)[1].split("\n", 1)[0].split())
    assert "breach not rolled back" in outcome and refused in outcome and "no finalize sends it late" in outcome, outcome
    said = _status(rec, capsys)
    row = said.split("finalize ", 1)[1].split(" breach not rolled back:", 1)[0]
    assert row.startswith("done: ") and refused in row and "no finalize sends it late" in row, row
    assert "running finalize again" not in said, said


def test_an_accepted_breach_past_a_stopped_finalize_does_not_say_no_traffic_moved_back():
    """Accepted, and its finalize stopped part-way: the `rollback` flow run then records nothing on the
    rollout (a finalize begun, ``HISTORY_KINDS``), nor does traffic moved by hand. "Traffic moved back:
    none" claimed what the ledger cannot know, where the breach standing says "none recorded"."""
    rec = _with(breach_standing(accepted=True), Transition(at=T0 + 6001, kind="finalize-start", actor="dana"))
    moved = incident_report(rec).split("## Traffic moved back", 1)[1].split("\n## ", 1)[0]
    assert f"**Traffic moved back:** none recorded: dana accepted the breach at {utc(T0 + 6000)}" in moved, moved
    assert "`rollway status` reads the load balancer now" in moved, moved


@pytest.mark.parametrize("shape", ["new", "old"])
def test_status_and_the_rollout_report_do_not_say_a_page_whose_answer_was_lost_reached_nobody(shape, capsys):
    """SNS's answer lost, the page may have gone out: the incident report says "Page not confirmed",
    where status and the rollout report said "that run's page reached nobody", and the entry they
    quote opened "the ... page was not sent" (as entries of older versions still do: read the same)."""
    rec = _with(breach_standing(), _answer_lost(T0 + 5811, shape))
    assert f"**Page not confirmed:** {LOST}" in _notification(rec)
    report = rollout_report(rec).split("**Window page not confirmed:**", 1)[1].split("\n", 1)[0]
    # Status's line on the page, above its history (which tests.unit.test_page_history reads).
    status = _status(rec, capsys).split(" last 1 transition", 1)[0]
    for said in (status, " ".join(report.split())):
        assert LOST in said and "reached nobody" not in said and "was not sent" not in said, said
        assert f'whether the "Breach not rolled back: {SERVICE}" page was sent is not known' in said, said
        assert "nobody knows whether that run's page reached people, and no run sends it again" in said, said
        assert "delivery logs" in said and "mend what SNS refused" not in said, said


def test_an_accepted_breach_s_exposure_is_said_as_far_as_the_ledger_knows():
    """The acceptance is recorded; that the release is in production still is inferred from no
    rollback being recorded (a rollback after the finalize, or traffic moved by hand, records none on
    the rollout): said as the standing breach's exposure says it, not as a fact."""
    text = incident_report(breach_standing(accepted=True), alert_topic="webordinary-alerts")
    exposed = next(line for line in text.splitlines() if line.startswith("- **Exposed for:**"))
    assert (f"and on as far as the ledger knows: kept in production since dana accepted the breach at "
            f"{utc(T0 + 6000)}, and no rollback of it is recorded (one recorded on no rollout, or traffic moved by "
            "hand, is not seen here; `rollway status` reads the load balancer now)") in exposed, exposed
