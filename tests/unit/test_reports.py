"""Rollout and incident reports rendered from ledger records built here: the text a person reads holds the facts."""

from __future__ import annotations

import re

import pytest

from rollway.fakes import FakeLedger
from rollway.ledger import RefusedAnswer, RolloutRecord, UNHEARD, Transition, begin_rollback, open_for_rollback, utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import duration, incident_report, rollback_trigger, rollout_report, stage_lines
from rollway.judge.sequential import StageEvidence
from rollway.spec import Analysis, Approvals, FlagBinding, RolloutSpec, Stage

T0 = 1_800_000_000.0
IMAGE = "123456789012.dkr.ecr.us-west-2.amazonaws.com/webordinary/edit-container:2.1.0"
SERVICE = "webordinary-edit-service-canary"


def w(canary: int) -> Weights:
    return Weights.canary_at(canary)


def spec(*weights: int, flags: tuple[str, ...] = ()) -> str:
    return RolloutSpec(image=IMAGE, stages=[Stage(weight=x, bake_seconds=600) for x in weights],
                       flags=[FlagBinding(feature=f, follow="traffic") for f in flags]).model_dump_json()


def record(history: list[Transition], phase: RolloutPhase, *, stages=(5, 25, 100), flags=(), weights=None) -> RolloutRecord:
    return RolloutRecord(
        service=SERVICE, rollout_id="20270115T080000Z-1a2b3c4d", image=IMAGE, spec_json=spec(*stages, flags=flags),
        phase=phase, previous_task_definition="webordinary-edit-task:3", canary_task_definition="webordinary-edit-task:4",
        weights=weights or (history[-1].to_weights if history and history[-1].to_weights else w(0)),
        created_at=T0, updated_at=history[-1].at if history else T0, history=tuple(history),
    )


def shift(at: float, to: int, stage: int, before: int = 0) -> Transition:
    return Transition(at=T0 + at, kind="shift", actor="alice", from_weights=w(before), to_weights=w(to),
                      from_stage=stage - 1 if stage else None, to_stage=stage, comment=f"stage {stage + 1}")


def passed(at: float, stage: int, why: str = "canary 0.08% vs baseline 0.10%") -> Transition:
    return Transition(at=T0 + at, kind="verdict", actor="judge", from_stage=stage, verdict=f"successful: {why}")


def started(at: float = 0) -> Transition:
    return Transition(at=T0 + at, kind="start", actor="alice", comment=f"rollout of {IMAGE}")


def promoted_record() -> RolloutRecord:
    return record([
        started(),
        shift(60, 5, 0), passed(700, 0),
        Transition(at=T0 + 800, kind="approve", actor="bob", to_stage=1, comment="approve: dashboards look fine",
                   verdict="approval before 25%"),
        shift(810, 25, 1, 5), passed(1500, 1, "canary 0.09% vs baseline 0.10%"),
        shift(1510, 100, 2, 25),
        Transition(at=T0 + 2200, kind="promote", actor="alice", to_weights=w(100), comment="every stage passed"),
        Transition(at=T0 + 5800, kind="watched", actor="monitor", comment="window passed"),
        Transition(at=T0 + 9000, kind="finalized", actor="carol", from_weights=w(100), to_weights=w(0)),
    ], RolloutPhase.PROMOTED)


def test_rollout_report_of_a_promotion_lists_stages_verdicts_and_approvals():
    text = rollout_report(promoted_record())
    assert "# Rollout report: webordinary-edit-service-canary, rollout 20270115T080000Z-1a2b3c4d" in text
    assert f"`{IMAGE}`" in text
    assert "**Outcome:** promoted; monitoring window closed (watched" in text
    assert f"finalized by carol at {utc(T0 + 9000)}" in text
    assert "**Stages planned:** 5%, 25%, 100%" in text
    # Each stage: its split, when it began and ended, how long, and the judge's reason.
    assert f"| 1/3 | 95/5 | {utc(T0 + 60)} | {utc(T0 + 810)} | 12.5 min |" in text
    assert "passed: successful: canary 0.08% vs baseline 0.10%" in text
    assert f"| 2/3 | 75/25 | {utc(T0 + 810)} | {utc(T0 + 1510)} |" in text
    assert "| 3/3 | 0/100 |" in text and "promoted: every stage passed" in text
    # The approval: who, when, what, at which stage, what was asked.
    assert f"| {utc(T0 + 800)} | - | bob | approve | 25% | dashboards look fine | approval before 25% |" in text
    assert "Rolled back because" not in text


def guardrail_rollback(*, finished: bool = True, flags=()) -> RolloutRecord:
    history = [
        started(), shift(60, 5, 0),
        Transition(at=T0 + 660, kind="rollback-start", actor="judge",
                   comment="5%: canary error rate 4.80% (48/1000) is over the 1% guardrail"),
    ]
    if finished:
        history.append(Transition(at=T0 + 700, kind="rollback", actor="judge", to_weights=w(0),
                                  comment="5%: canary error rate 4.80% (48/1000) is over the 1% guardrail"))
    return record(history, RolloutPhase.ROLLED_BACK if finished else RolloutPhase.ROLLING_BACK, flags=flags,
                  weights=w(0) if finished else w(5))


def test_incident_report_of_a_guardrail_rollback_has_trigger_exposure_steps_and_next_steps():
    text = incident_report(guardrail_rollback(flags=("sqs-sessions",)), alert_topic="webordinary-alerts")
    assert f"`{IMAGE}` was rolled back at {utc(T0 + 700)}." in text
    assert "**Trigger:** an absolute guardrail" in text
    assert "**Reason:** 5%: canary error rate 4.80% (48/1000) is over the 1% guardrail" in text
    assert f"**First traffic to the new version:** {utc(T0 + 60)} (5%)" in text
    assert "**Highest canary weight:** 5%" in text
    assert "**Weight when the rollback began:** 5% (95/5 stable/canary)" in text
    assert "**Exposed for:** 10.7 min" in text  # from the first shift to the read-back of 100/0
    assert f"{utc(T0 + 660)}: rollback intent recorded by judge" in text
    assert f"{utc(T0 + 700)}: the load balancer read back **100/0**" in text
    assert "pointed back at webordinary-edit-task:3" in text
    assert "disabled (`sqs-sessions`" in text
    assert "`webordinary-alerts` (subject `Rollback: webordinary-edit-service-canary`" in text
    assert "## Next steps" in text and f"from {utc(T0 + 60)} to {utc(T0 + 700)}" in text
    assert "| 1/3 | 95/5 |" in text and "rolled back (judge: 5%: canary error rate 4.80%" in text


def test_incident_report_of_an_unfinished_rollback_says_nothing_is_confirmed():
    text = incident_report(guardrail_rollback(finished=False))
    # The stage's verdict too: its traffic is not known to be back (it said "rolled back").
    (line,) = stage_lines(guardrail_rollback(finished=False))
    assert line.verdict.startswith("rollback begun, not recorded as finished (judge: 5%: canary error rate")
    assert line.ended_at is None and "rolled back" not in line.verdict
    assert "**not recorded as finished**" in text
    assert "**Not confirmed:** the ledger records no finished rollback. Run `rollway abort`" in text
    assert "Which steps were done is not recorded" in text
    assert "the traffic's return is not recorded)" in text
    assert "read back **100/0**" not in text


def test_an_unfinished_rollbacks_next_steps_open_with_finishing_it():
    """The checklist a responder works through the morning after listed reading logs, the DLQs and
    a fix, and nothing of the rollback left open: its traffic, flags and page not known done, said
    only in a line of "Traffic moved back" above."""
    first = next_steps(incident_report(guardrail_rollback(finished=False))).strip().splitlines()[0]
    assert first.startswith("- [ ] Finish the rollback: run `rollway abort` (or the rollback flow)"), first
    stopped = next_steps(incident_report(stopped_after_paging(None))).strip().splitlines()[0]
    assert stopped.startswith("- [ ] Finish the rollback:"), stopped
    # Where `rollway abort` cannot finish it, the step says what does, as the line above it does.
    cannot = next_steps(incident_report(guardrail_rollback(finished=False), unrestorable="register one by hand"))
    assert "`rollway abort` cannot finish it (register one by hand)" in cannot.splitlines()[2], cannot
    # A run carrying it out now: follow it, not start a second one beside it.
    claimed = guardrail_rollback(finished=False).model_copy(
        update={"rollback_holder": "judge (flow run brave-fox)", "rollback_expires": T0 + 720})
    assert "follow that run" in next_steps(incident_report(claimed, now=T0 + 700)).splitlines()[2]
    # A rollback recorded as finished leaves nothing to finish.
    assert "Finish the rollback" not in incident_report(guardrail_rollback())


def test_the_rollout_report_of_an_unfinished_rollback_says_what_finishes_it():
    """Its outcome said "rolling back: ... not recorded as finished" and nothing more: the report
    read alone (its own artifact) said neither what finishes it nor that a run carries it out now."""
    outcome = next(x for x in rollout_report(guardrail_rollback(finished=False)).splitlines()
                   if x.startswith("- **Outcome:**"))
    assert "not recorded as finished; run `rollway abort` (or the rollback flow) to finish it" in outcome, outcome
    cannot = next(x for x in rollout_report(guardrail_rollback(finished=False), unrestorable="register one by hand"
                                            ).splitlines() if x.startswith("- **Outcome:**"))
    assert "`rollway abort` cannot finish it (register one by hand)" in cannot, cannot
    claimed = guardrail_rollback(finished=False).model_copy(
        update={"rollback_holder": "judge (flow run brave-fox)", "rollback_expires": T0 + 720})
    live = next(x for x in rollout_report(claimed, now=T0 + 700).splitlines() if x.startswith("- **Outcome:**"))
    assert "**It is being carried out by judge (flow run brave-fox)**" in live and "follow that run" in live, live
    # A rollback that stopped with the traffic back says it on its "Users get" line: not twice.
    stopped = rollout_report(stopped_after_paging(None))
    assert "rollway abort" not in stopped and stopped.count("run the rollback again") == 1, stopped


def test_the_rollout_report_does_not_call_a_rollback_not_finished_rolled_back():
    """"Rolled back because:" headed the reason of a rollback not recorded as finished, its canary
    maybe still taking traffic, below an outcome saying it was not finished."""
    text = rollout_report(guardrail_rollback(finished=False))
    assert "Rolled back because" not in text, text
    assert f"- **Rollback begun because:** 5%: canary error rate 4.80% (48/1000) is over the 1% guardrail (by judge, " \
           f"{utc(T0 + 660)})" in text, text
    assert "- **Rolled back because:** 5%: canary error rate" in rollout_report(guardrail_rollback())


def test_an_unfinished_rollback_names_who_is_carrying_it_out_and_whether_its_claim_is_live():
    """The advice said only "run `rollway abort`": nothing named the rollback under way (its
    claim's holder), so a reader started a second one, which then waited on a run nobody named."""
    holder = "judge (flow run brave-fox, 0f1e2d3c)"
    claimed = guardrail_rollback(finished=False).model_copy(
        update={"rollback_holder": holder, "rollback_expires": T0 + 720})
    (live,) = [x for x in incident_report(claimed, now=T0 + 700).splitlines() if x.startswith("- **Not confirmed:**")]
    # Claims are stamped on the wall clock, and the history beside them on the rollout clock.
    assert (f"**It is being carried out by {holder}**, its claim renewed until {utc(T0 + 720)} (wall clock; live "
            "when this report was written)") in live
    assert "a rollback started meanwhile waits for it" in live
    (lapsed,) = [x for x in incident_report(claimed, now=T0 + 900).splitlines()
                 if x.startswith("- **Not confirmed:**")]
    assert f"It was carried out by {holder}, whose claim lapsed at {utc(T0 + 720)} (wall clock;" in lapsed
    assert "takes it over at once" in lapsed and "being carried out" not in lapsed
    # Without the time, the holder and its claim are still named, live or not left unsaid.
    assert f"carried out by {holder}**, its claim renewed until {utc(T0 + 720)} (wall clock):" in incident_report(claimed)
    # Nobody holds it (given up after a failed step): no holder is named.
    assert "carried out by" not in incident_report(guardrail_rollback(finished=False), now=T0 + 700)


def before_trigger(actor: str, comment: str, *extra: Transition) -> RolloutRecord:
    return record([started(), shift(60, 5, 0), *extra,
                   Transition(at=T0 + 300, kind="rollback-start", actor=actor, comment=comment),
                   Transition(at=T0 + 330, kind="rollback", actor=actor, to_weights=w(0), comment=comment)],
                  RolloutPhase.ROLLED_BACK)


@pytest.mark.parametrize(
    ("rec", "kind", "says"),
    [
        (before_trigger("judge", "5%: canary error rate 0.52% vs the baseline's 0.10%: the sequential test crossed its bar"),
         "judge", "the canary judge's verdict"),
        (before_trigger("judge", "5%: canary error rate 4.8% is over the 1% guardrail"), "guardrail", "an absolute guardrail"),
        (before_trigger("carol", "aborted by carol: users report 500s"), "abort", "a person, carol, with `rollway abort`"),
        (before_trigger("dave", "rejected by dave: latency looks off",
                        Transition(at=T0 + 290, kind="reject", actor="dave", to_stage=0, comment="reject: latency looks off",
                                   verdict="approval before 25%")),
         "reject", "a person, dave, who rejected"),
        (before_trigger("timeout", "rejected by timeout: approval before 25%",
                        Transition(at=T0 + 290, kind="timeout", actor="timeout", to_stage=0, comment="reject",
                                   verdict="approval before 25%")),
         "approval-timeout", "an approval pause nobody answered in time"),
        (before_trigger("state hook (crashed)", "run brave-fox crashed: worker lost"), "hook",
         "a rollout run's hook (crashed): the run crashed"),
        # A cancelled run's trigger read "the run failed, crashed or was cancelled": a person's Cancel
        # (or a stopped serving process), left for the reader to guess.
        (before_trigger("state hook (cancelling)", "run brave-fox was cancelled: cancelled from the UI"), "hook",
         "a rollout run's hook (cancelling): the run was cancelled (Cancel in the Prefect UI, or the process "
         "serving it stopped)"),
        (before_trigger("monitor", "the promoted version's error rate 6% is over 5%"), "monitor", "post-promotion monitor"),
        (before_trigger("drift", "the load balancer holds 80/20 (stable/canary), not the 95/5 this run set"), "drift",
         "moved by someone else"),
        (before_trigger("operator", "manual rollback"), "manual", "operator, with the rollback flow"),
    ],
)
def test_the_trigger_is_named_for_each_way_a_rollback_starts(rec, kind, says):
    trigger = rollback_trigger(rec)
    assert trigger.kind == kind
    assert says in incident_report(rec)
    assert f"**Reason:** {rec.last_transition('rollback-start').comment}"[:60] in incident_report(rec)


def test_a_rollback_on_load_balancer_5xx_is_the_guardrails_not_the_judges():
    """The guardrail on load-balancer 5xx with no request count (the canary has no healthy
    target) fails a stage with a reason that names no "guardrail"; the engine records every
    rollback a verdict asks for as the judge's, and the report said the canary judge's
    comparison with the baseline rolled it back, when no comparison was made."""
    from rollway.judge.guardrails import UNATTRIBUTED, check_totals
    from rollway.model import VersionSample
    from rollway.spec import Guardrails

    verdict = check_totals(Guardrails(), VersionSample(requests=0, errors=0), 0, unserved=12, monitoring=False,
                           healthy_targets=0)
    assert (verdict.phase.value, verdict.metric) == ("failed", UNATTRIBUTED)
    rec = before_trigger("judge", f"5%: {verdict.reason}")  # as decide() words the rollback
    assert rollback_trigger(rec).kind == "guardrail"
    (line,) = [x for x in incident_report(rec).splitlines() if x.startswith("- **Trigger:**")]
    assert "guardrail on the requests the load balancer answered 5xx itself" in line
    assert "judge" not in line and "baseline)" in line
    # The canary's own error rate over the guardrail, with load-balancer 5xx beside it, is still its errors'.
    over = check_totals(Guardrails(), VersionSample(requests=1000, errors=48), 19000, unserved=3, monitoring=False)
    assert "answered 5xx by the load balancer itself" in over.reason
    assert "guardrail on the canary's errors" in incident_report(before_trigger("judge", f"5%: {over.reason}"))


def test_the_monitors_rollback_on_load_balancer_5xx_is_not_called_an_error_rate():
    from rollway.judge.guardrails import check_totals
    from rollway.model import VersionSample
    from rollway.spec import Guardrails

    refused = check_totals(Guardrails(), VersionSample(requests=0, errors=0), 0, unserved=12, monitoring=True,
                           healthy_targets=0)
    assert refused.phase.value == "failed"
    text = incident_report(before_trigger("monitor", f"monitoring after promotion: {refused.reason}"))
    assert "post-promotion monitor's absolute guardrail on the requests the load balancer answered 5xx itself" in text
    assert "guardrail on the promoted version's errors" not in text
    over = check_totals(Guardrails(), VersionSample(requests=1000, errors=80), 0, unserved=3, monitoring=True)
    assert over.phase.value == "failed" and "answered 5xx by the load balancer itself" in over.reason
    assert "absolute guardrail on the promoted version's errors" in incident_report(
        before_trigger("monitor", f"monitoring after promotion: {over.reason}"))


def test_a_drift_rollbacks_exposure_says_the_drifted_weights_are_not_counted():
    """The ledger keeps a drift's weights only in its reason: the report gave the last recorded
    move (5 %) as "the weight when the rollback began" while the load balancer held 20 %."""
    text = incident_report(before_trigger(
        "drift", "the load balancer holds 80/20 (stable/canary), not the 95/5 this run set: the traffic was moved "
                 "by someone else, so this run rolls back instead of shifting to 25%"))
    (began,) = [x for x in text.splitlines() if x.startswith("- **Weight when the rollback began:**")]
    assert began.startswith("- **Weight when the rollback began:** 5% (95/5 stable/canary) as the rollout last "
                            "recorded them; the load balancer held other weights then")
    assert "- **Highest canary weight:** 5% (of the recorded moves)" in text
    assert "of the recorded moves" not in incident_report(guardrail_rollback())


def timed_out_into_a_rollback() -> RolloutRecord:
    return before_trigger("timeout", "rejected by timeout: no answer within 3600 s",
                          Transition(at=T0 + 290, kind="timeout", actor="timeout", to_stage=1,
                                     comment="reject: no answer within 3600 s", verdict="approval needed before 25%"))


def test_an_approval_timeout_names_the_spec_setting_as_a_spec_spells_it():
    """The report sent people to `on_timeout: reject`, which no spec accepts: the setting is
    `approvals.on_timeout`, and its value that rolls back is `rollback`."""
    text = incident_report(timed_out_into_a_rollback())
    (quoted,) = re.findall(r"`approvals\.on_timeout: (\w+)`", text)
    assert Approvals(on_timeout=quoted).on_timeout == "rollback"
    assert "on_timeout: reject" not in text


@pytest.mark.parametrize(("mode", "weight", "says", "not_said"), [
    ("two-sample", 5, "(the new version compared with the baseline)", "SLO"),
    # At 100 % no baseline serves traffic: the judge holds the canary to the SLO (judge_for_stage).
    ("one-sample", 100, "(the new version held to the spec's SLO, not compared with the baseline)",
     "(the new version compared with the baseline)"),
])
def test_a_judge_rollback_says_what_the_judge_held_the_new_version_to(mode, weight, says, not_said):
    """A judge's rollback at 100% was said to compare the new version with the baseline,
    which serves nothing there; its reason said "vs SLO"."""
    (errors, _) = StageEvidence(Analysis(mode=mode)).metrics  # the judge's own words for what it compared
    reason = f"{weight}%: {errors.describe()}: evidence 2.1e+04 reached 200 that the canary is worse — roll back"
    (trigger,) = [line for line in incident_report(before_trigger("judge", reason)).splitlines()
                  if line.startswith("- **Trigger:**")]
    assert trigger == f"- **Trigger:** the canary judge's verdict {says}"
    assert not_said not in trigger


def test_a_rejection_report_quotes_what_the_person_answered():
    rec = before_trigger("dave", "rejected by dave: latency looks off",
                         Transition(at=T0 + 290, kind="reject", actor="dave", to_stage=0, comment="reject: latency looks off",
                                    verdict="approval before 25%"))
    # The answer is said by "rejected" already: the comment quoted "reject: latency looks off".
    assert "**The pause answered:** approval before 25% (comment: latency looks off)" in incident_report(rec)


def test_a_rejection_without_a_comment_is_quoted_as_none_given():
    rec = before_trigger("dave", "rejected by dave", Transition(at=T0 + 290, kind="reject", actor="dave", to_stage=0,
                                                                 comment="reject", verdict="approval before 25%"))
    assert "**The pause answered:** approval before 25% (comment: -)" in incident_report(rec)


@pytest.mark.parametrize("phase", [RolloutPhase.PROMOTED, RolloutPhase.PROGRESSING, RolloutPhase.PAUSED])
def test_no_incident_report_for_a_rollout_that_was_not_rolled_back(phase):
    with pytest.raises(ValueError, match="not rolled back: there is no incident to report"):
        incident_report(record([started(), shift(60, 5, 0)], phase))


def test_an_unfinished_rollout_shows_its_current_stage():
    rec = record([started(), shift(60, 5, 0), passed(700, 0), shift(710, 25, 1, 5)], RolloutPhase.PROGRESSING)
    lines = stage_lines(rec)
    assert [(l.weights.canary, l.verdict) for l in lines] == [(5, "passed: successful: canary 0.08% vs baseline 0.10%"),
                                                           (25, "current")]
    assert "**Outcome:** progressing (not finished) at 75/25" in rollout_report(rec)


def test_a_rollout_that_never_shifted_says_so():
    rec = record([started()], RolloutPhase.ROLLED_BACK)
    assert "No shift to the new version is recorded." in rollout_report(rec)
    assert "The ledger records no rollback transition" in incident_report(rec)


def test_names_and_comments_cannot_break_the_tables():
    rec = record([started(), shift(60, 5, 0),
                  Transition(at=T0 + 100, kind="hold", actor="eve | admin", to_stage=0, comment="hold:\nwait | see")],
                 RolloutPhase.PAUSED)
    text = rollout_report(rec)
    assert r"| eve \| admin | hold | 5% | wait \| see |" in text


def test_the_approvals_table_says_each_answer_once():
    """The comment column repeated the answer beside it ("approve | approve: ok"): the ledger
    records an answer's comment after the answer, and the table has a column for each."""
    rec = record([started(), shift(60, 5, 0),
                  Transition(at=T0 + 100, kind="approve", actor="bob", to_stage=0, comment="approve",
                             verdict="stage 1 over"),
                  Transition(at=T0 + 200, kind=UNHEARD, actor="dana", to_stage=0, verdict="stage 2 over",
                             comment="reject: latency (given to flow run x at 2027-01-15, wall clock)"),
                  Transition(at=T0 + 300, kind="hold", actor="eve", to_stage=0, comment="hold: approve: later")],
                 RolloutPhase.PAUSED)
    rows = [line for line in rollout_report(rec).split("## Approvals")[1].splitlines() if line.startswith("| ")]
    assert rows[1].endswith("| bob | approve | 5% | - | stage 1 over |"), rows
    assert rows[2].endswith("| dana | reject, not acted on (its run had stopped saying it waits) | 5% | latency (given to flow run x at "
                            "2027-01-15, wall clock) | stage 2 over |"), rows
    # Only the answer recorded first goes: a comment that itself starts with an answer is the person's.
    assert rows[3].endswith("| eve | hold | 5% | approve: later |  |"), rows


def test_a_pause_the_rollout_was_rolled_back_from_unanswered_is_in_the_approvals_table():
    """A person ran the rollback flow while the rollout waited at an approval pause: the report's
    Approvals table said "No approval was asked for or answered", though the pause had asked one
    and nobody answered it before the rollback."""
    question = ("approval pause: 5%: canary 0.08% vs baseline 0.10%; approval needed before 25%; unanswered by "
                f"{utc(T0 + 3800)} (wall clock) the rollout rolls back")
    rec = before_trigger("carol", "users report 500s on save", passed(190, 0),
                         Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=question))
    text = rollout_report(rec)
    approvals = text.split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    assert "No approval was asked" not in approvals, approvals
    (row,) = [line for line in approvals.splitlines() if line.startswith(f"| {utc(T0 + 200)} |")]
    assert "**not answered**" in row and "| 25% |" in row and "approval needed before 25%" in row, row
    # What ended the wait, and who.
    assert f"rollback-start (carol, {utc(T0 + 300)})" in row, row
    # A pause that was answered has no such row.
    answered = before_trigger("dave", "rejected by dave: latency looks off",
                              Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=question),
                              Transition(at=T0 + 290, kind="reject", actor="dave", to_stage=1,
                                         comment="reject: latency looks off", verdict=question))
    assert "not answered" not in rollout_report(answered)


def test_the_incident_report_of_a_rollback_run_while_a_pause_waited_names_the_pause():
    """The rollback flow run by hand while the rollout waited at an approval pause: the incident
    report's trigger said "carol, with the rollback flow" alone, and an on-call engineer could not
    tell that the rollout had been waiting for a person, since when, nor what it asked."""
    question = "approval pause: 5%: canary 0.08% vs baseline 0.10%; approval needed before 25%"
    rec = before_trigger("carol", "users report 500s on save", passed(190, 0),
                         Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=question))
    text = incident_report(rec)
    trigger = text.split("## What triggered it", 1)[1].split("## Exposure", 1)[0]
    assert (f"- **While it waited at a pause:** asked at {utc(T0 + 200)} for stage 2/3 (25%), not answered: "
            f"{question}") in trigger, trigger
    # Asked again after a timeout whose policy holds: still the pause it waited at.
    held = before_trigger("carol", "users report 500s on save", passed(190, 0),
                          Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=question),
                          Transition(at=T0 + 260, kind="timeout", actor="timeout", to_stage=1,
                                     comment="hold: no answer within 60 s", verdict=question))
    assert f"- **While it waited at a pause:** asked at {utc(T0 + 200)}" in incident_report(held)
    # Without a pause open, nothing is said of one.
    assert "While it waited" not in incident_report(before_trigger("carol", "users report 500s on save"))


def next_steps(text: str) -> str:
    return text.split("## Next steps", 1)[1]


def test_an_approval_timeouts_next_steps_do_not_send_a_responder_looking_for_a_fault():
    """Rolled back because nobody answered a pause in time, the next steps said "Find the cause
    and fix it; ship the fix as a new image tag" and to adjust the thresholds of a judge that found
    nothing: the version may be sound, and what is next is asking again when someone can answer."""
    steps = next_steps(incident_report(timed_out_into_a_rollback()))
    assert "Find the cause and fix it" not in steps and "adjust the spec's thresholds" not in steps, steps
    assert "No fault of the new version was found" in steps, steps
    assert "Start the rollout of the same image again" in steps, steps
    assert "`approvals.timeout_seconds`" in steps and "`approvals.on_timeout` set to `hold`" in steps, steps


def test_an_approval_timeout_report_says_nobody_answered_not_what_failed():
    """After an approval timeout the first next step said "confirm what failed" (nothing failed:
    nobody answered), and "The pause answered:" quoted the recorded "reject: no answer within
    3600 s" of a pause nobody answered."""
    text = incident_report(timed_out_into_a_rollback())
    assert "confirm what failed" not in text, next_steps(text)
    first = next_steps(text).strip().splitlines()[0]
    assert first.startswith("- [ ] Read the canary's logs and metrics") and "whether users were affected" in first, first
    # The timeline lists the ledger's entries as recorded (a "timeout" entry by "timeout"): the rest
    # must not read its words as a person's answer.
    told = text.split("## Timeline", 1)[0] + text.split("## Evidence", 1)[1]
    assert "The pause answered" not in told and "reject: no answer" not in told, text
    assert ("- **The pause nobody answered:** approval needed before 25% (no answer within 3600 s)"
            in text.splitlines()), text


def test_a_persons_rollback_does_not_call_the_judges_thresholds_the_false_alarm():
    """A person rejected the rollout (or rolled it back by hand) after the judge passed its stages:
    "If the trigger was wrong (a false alarm), ... adjust the spec's thresholds" pointed at
    thresholds that raised no alarm; what they tell is whether the judge missed what the person saw."""
    rejected = before_trigger("dave", "rejected by dave: latency looks off", passed(200, 0),
                              Transition(at=T0 + 290, kind="reject", actor="dave", to_stage=1,
                                         comment="reject: latency looks off", verdict="approval before 25%"))
    for rec in (rejected, before_trigger("carol", "users report 500s on save", passed(200, 0))):
        steps = next_steps(incident_report(rec))
        assert "If the trigger was wrong (a false alarm), record why and adjust" not in steps, steps
        assert "the judge passed what the person saw" in steps, steps
        assert "Find the cause and fix it" in steps, steps
    # The judge's own rollback keeps the false-alarm step.
    judged = before_trigger("judge", "5%: canary error rate 0.52% vs the baseline's 0.10%: the sequential test crossed")
    assert "If the trigger was wrong (a false alarm)" in next_steps(incident_report(judged))


def test_a_stage_that_passed_before_a_person_aborted_shows_both():
    rec = record([started(), shift(60, 5, 0), passed(700, 0),
                  Transition(at=T0 + 720, kind="rollback-start", actor="carol", comment="aborted by carol: not today"),
                  Transition(at=T0 + 750, kind="rollback", actor="carol", to_weights=w(0),
                             comment="aborted by carol: not today")], RolloutPhase.ROLLED_BACK)
    (line,) = stage_lines(rec)
    # Named once, as status names who began it (``begun_by``): it read "rolled back (carol): aborted by carol: ...".
    assert line.verdict == ("passed: successful: canary 0.08% vs baseline 0.10%; then rolled back "
                            "(aborted by carol: not today)")
    assert line.ended_at == T0 + 750


def test_a_name_with_a_line_break_cannot_add_a_heading_to_the_incident_report():
    # The approver's name comes from the pause form's text area; the trigger line quotes it.
    who = "dave\n\n# Rollback was a false alarm, nothing to do"
    rec = before_trigger(who, f"rejected by {who}: latency looks off",
                         Transition(at=T0 + 290, kind="reject", actor=who, to_stage=0, comment="reject: latency",
                                    verdict="approval before 25%"))
    text = incident_report(rec)
    assert not any(line.startswith("# Rollback was a false alarm") for line in text.splitlines())
    assert "a person, dave # Rollback was a false alarm, nothing to do, who rejected" in text


def test_a_rollback_the_monitor_finished_is_reported_finished():
    # flows/monitor.py records its rollback's end with the record's weights, not the transition's.
    reason = "monitoring after promotion: canary error rate 6.00% (60/1000) is over the 5% guardrail"
    rec = record([started(), shift(60, 100, 0),
                  Transition(at=T0 + 2200, kind="promote", actor="alice", to_weights=w(100), comment="every stage passed"),
                  Transition(at=T0 + 3000, kind="rollback-start", actor="monitor", comment=reason),
                  Transition(at=T0 + 3040, kind="rollback", actor="monitor", comment=reason)],
                 RolloutPhase.ROLLED_BACK, stages=(100,), weights=w(0))
    text = incident_report(rec)
    assert f"was rolled back at {utc(T0 + 3040)}." in text
    # Which check asked for it, as for the judge's guardrail rollbacks: a fixed limit, not the baseline.
    assert ("**Trigger:** the post-promotion monitor's absolute guardrail on the promoted version's errors (a fixed "
            "limit, not a comparison with the baseline)") in text, text
    # Finished in the ledger: not told to finish it, no "None" where the weights would be.
    assert "Not confirmed" not in text and "rollway abort" not in text
    assert "None" not in text
    assert f"- {utc(T0 + 3040)}: the rollback was recorded as finished by monitor" in text
    assert "**Exposed for:** 49.7 min" in text and "so far" not in text
    (line,) = stage_lines(rec)
    assert line.ended_at == T0 + 3040


def test_a_rollback_without_a_recorded_previous_task_definition_names_what_it_restores():
    # flows/rollback.py points the canary at the stable service's task definition when none is known.
    rec = guardrail_rollback().model_copy(update={"previous_task_definition": None})
    text = incident_report(rec)
    assert "its previous task definition" not in text
    assert "pointed back at the stable service's task definition (inferred: the ledger records none from before" in text


def test_the_incident_report_names_the_message_id_and_task_definition_the_rollback_recorded():
    """A hand-run rollback told to restore another revision than the rollout's previous one:
    the report used to name the recorded previous revision, and send people to the run's result
    for the notice's id. Both are in the rollback's ledger entry now."""
    rec = guardrail_rollback()
    end = rec.history[-1].model_copy(update={"actor": "carol", "message_id": "5f2b9e4c-0d1a-4c8e-9e51-1b7d3a0c6f42",
                                             "task_definition": "webordinary-edit-task:2"})
    text = incident_report(rec.model_copy(update={"history": rec.history[:-1] + (end,)}), alert_topic="webordinary-alerts")
    assert "pointed back at webordinary-edit-task:2 (recorded by the rollback)" in text
    assert "SNS message id `5f2b9e4c-0d1a-4c8e-9e51-1b7d3a0c6f42`" in text
    assert "inferred" not in text.lower() and "run's result" not in text
    assert "canary restored to webordinary-edit-task:2; SNS message 5f2b9e4c" in rollout_report(
        rec.model_copy(update={"history": rec.history[:-1] + (end,)}))


def test_an_older_rollback_entry_without_them_still_reads_and_says_what_is_inferred():
    text = incident_report(guardrail_rollback(), alert_topic="webordinary-alerts")
    assert "pointed back at webordinary-edit-task:3 (inferred: the rollout's previous task definition" in text
    assert "Inferred: sent on `webordinary-alerts`" in text and "keeps no message id" in text
    # As DynamoDB hands back an entry written before the fields existed (absent attributes).
    old = Transition.model_validate({"at": T0, "kind": "rollback", "actor": "judge"})
    assert (old.message_id, old.task_definition) == (None, None)


def test_a_finalizing_name_with_a_line_break_cannot_add_a_heading_to_the_rollout_report():
    # `rollway finalize --actor` and the finalize flow's `actor` keep a name's inner line breaks;
    # the outcome line quotes who finalized.
    who = "carol\n\n# Rollout report: nothing to see here"
    rec = promoted_record()
    done = rec.history[-1].model_copy(update={"actor": who})
    text = rollout_report(rec.model_copy(update={"history": rec.history[:-1] + (done,)}))
    assert not any(line.startswith("# Rollout report: nothing") for line in text.splitlines())
    assert "finalized by carol # Rollout report: nothing to see here at" in text


def test_a_finalize_that_stopped_part_way_is_in_the_outcome_with_what_to_run():
    """A finalize whose run stopped between its start and its end left the report saying only
    "promoted; monitoring window closed": the service looked done, while the finalize was
    half-done and has to be run again (the timeline alone showed a finalize-start)."""
    rec = promoted_record()
    stopped = Transition(at=T0 + 9000, kind="finalize-start", actor="carol", from_weights=w(100),
                         comment="moving webordinary-edit-task:4 onto webordinary-edit-service at 4 tasks")
    text = rollout_report(rec.model_copy(update={"history": rec.history[:-1] + (stopped,)}))
    (outcome,) = [line for line in text.splitlines() if line.startswith("- **Outcome:**")]
    assert f"**finalize began** (carol, {utc(T0 + 9000)}) **and is not recorded as finished**" in outcome
    assert "run `rollway finalize` (or the finalize deployment) again" in outcome
    # A finished one is told as before.
    assert "finalize began" not in rollout_report(rec)


def test_a_promotion_whose_window_closed_and_not_finalized_says_finalize_is_next():
    """Read after the window closed and before anyone finalized, the outcome said "promoted;
    monitoring window closed": the release looked finished, while the canary service still carries
    all the traffic and the next rollout is refused until `rollway finalize` runs."""
    rec = promoted_record()
    unfinalized = rec.model_copy(update={"history": rec.history[:-1]})  # up to the window's "watched"
    (outcome,) = [line for line in rollout_report(unfinalized).splitlines() if line.startswith("- **Outcome:**")]
    assert "**not finalized**" in outcome and "run `rollway finalize`" in outcome, outcome
    assert "a new rollout of the service is refused until then" in outcome, outcome
    # Finalized: nothing owed is said.
    assert "not finalized" not in rollout_report(rec)


def test_a_promotion_whose_monitoring_window_is_not_closed_says_so():
    """Read while a run still watched the release (or after that run died with the window
    owed), the outcome said plain "promoted": the release looked final, though the previous
    version still runs and `rollway abort` still rolls it back."""
    rec = promoted_record()
    promote = next(i for i, t in enumerate(rec.history) if t.kind == "promote")
    window = RolloutSpec.from_record(rec.spec_json).monitor_seconds
    # As the journal records a promotion: the window's end with it.
    watching = rec.model_copy(update={"history": rec.history[:promote + 1], "monitor_until": T0 + 2200 + window})
    assert open_for_rollback(RolloutSpec.from_record(watching.spec_json), watching)  # as `rollway abort` decides
    (outcome,) = [line for line in rollout_report(watching).splitlines() if line.startswith("- **Outcome:**")]
    assert f"**monitoring window not recorded as closed** (due to end {utc(T0 + 2200 + window)})" in outcome
    assert "`rollway abort` can still roll the release back" in outcome
    # Closed (watched, then finalized): nothing owed is said.
    assert "not recorded as closed" not in rollout_report(rec)


def test_an_unverified_window_says_its_look_counts_in_the_report_as_status_does():
    """Its run recorded how many of the window's looks counted requests (beside the history), and
    status said them; the report's outcome said only that the window was not recorded as closed,
    which reads the same as a run that died watching it."""
    from rollway.ledger import UnverifiedWindow
    from rollway.reports import monitoring_row

    rec = promoted_record()
    promote = next(i for i, t in enumerate(rec.history) if t.kind == "promote")
    ends = T0 + 2200 + RolloutSpec.from_record(rec.spec_json).monitor_seconds
    seen = UnverifiedWindow(at=ends + 60, actor="run-7", counted=3, looks=29, failed=2)
    unverified = rec.model_copy(update={"history": rec.history[:promote + 1], "monitor_until": ends,
                                        "unverified_window": seen})
    (outcome,) = [line for line in rollout_report(unverified).splitlines() if line.startswith("- **Outcome:**")]
    said = (f"unverified: 3 of 29 looks counted requests to the new version (2 could not read the metrics; "
            f"run-7's run, window ended {utc(ends + 60)}); the old service is kept")
    assert said in outcome, outcome
    assert said in monitoring_row(unverified, ends + 600)  # status's words
    assert "`rollway abort` can still roll the release back" in outcome
    # No looks failed to read the metrics: none is said to have.
    clean = unverified.model_copy(update={"unverified_window": seen.model_copy(update={"failed": 0})})
    assert f"3 of 29 looks counted requests to the new version (run-7's run" in rollout_report(clean)


def test_look_counts_of_a_run_that_stopped_before_the_windows_end_are_said_alike_and_as_so_far():
    """A monitor run given a window shorter than what was left ended unverified before the
    window's end. The report's outcome said its counts as the window's ("unverified: ...; the old
    service is kept") while status said only "open until ...": two readings of one record. Both
    now say them from one function, as counted so far, not as the window's end."""
    from rollway.ledger import UnverifiedWindow
    from rollway.reports import monitoring_row

    rec = promoted_record()
    promote = next(i for i, t in enumerate(rec.history) if t.kind == "promote")
    ends = T0 + 2200 + RolloutSpec.from_record(rec.spec_json).monitor_seconds
    seen = UnverifiedWindow(at=ends - 1200, actor="run-7", counted=3, looks=29, failed=2)
    partial = rec.model_copy(update={"history": rec.history[:promote + 1], "monitor_until": ends,
                                     "unverified_window": seen})
    said = (f"so far: a run that stopped watching before the window's end counted requests to the new version in 3 "
            f"of its 29 looks (2 could not read the metrics; run-7's run, ended {utc(ends - 1200)})")
    (outcome,) = [line for line in rollout_report(partial).splitlines() if line.startswith("- **Outcome:**")]
    assert said in outcome and "unverified:" not in outcome, outcome
    for now in (ends - 600, ends + 600):  # while the window runs, and once it is due to have ended
        row = monitoring_row(partial, now)
        assert said in row and "unverified:" not in row, row
    # A run that watched to the window's end: its counts are the window's, whatever the reader's clock.
    ended = partial.model_copy(update={"unverified_window": seen.model_copy(update={"at": ends + 60})})
    (outcome,) = [line for line in rollout_report(ended).splitlines() if line.startswith("- **Outcome:**")]
    assert "unverified: 3 of 29 looks" in outcome and "so far" not in outcome, outcome
    assert "unverified: 3 of 29 looks" in monitoring_row(ended, ends - 600)


def test_look_counts_that_no_longer_describe_the_owed_window_are_not_said():
    """Counts recorded before the rollout's promotion, or on a rollout whose window closed since
    (a decommission, a "watched" mark, a rollback: records written before the runs cleared them),
    describe no window a reader could act on: neither status nor the report says them."""
    from rollway.ledger import UnverifiedWindow, owed_unverified
    from rollway.reports import monitoring_row

    rec = promoted_record()
    promote = next(i for i, t in enumerate(rec.history) if t.kind == "promote")
    window_spec = RolloutSpec.from_record(rec.spec_json)
    ends = T0 + 2200 + window_spec.monitor_seconds
    open_ = rec.model_copy(update={"history": rec.history[:promote + 1], "monitor_until": ends})
    before = open_.model_copy(update={"unverified_window": UnverifiedWindow(at=T0 + 100, actor="run-7", counted=0,
                                                                             looks=3)})
    assert owed_unverified(window_spec, before) is None
    assert "run-7" not in rollout_report(before) and "run-7" not in monitoring_row(before, ends + 600)
    seen = UnverifiedWindow(at=ends + 60, actor="run-7", counted=3, looks=29)
    closed = rec.model_copy(update={"unverified_window": seen})  # watched, then finalized
    assert owed_unverified(window_spec, closed) is None and "3 of 29" not in rollout_report(closed)
    rolled = open_.model_copy(update={"unverified_window": seen, "phase": RolloutPhase.ROLLED_BACK, "history": (
        *open_.history, Transition(at=ends + 120, kind="rollback", actor="erin", comment="aborted"))})
    assert owed_unverified(window_spec, rolled) is None and "3 of 29" not in rollout_report(rolled)
    assert monitoring_row(rolled, ends + 600) is None


def test_an_unfinished_rollback_states_its_exposure_as_a_lower_bound_not_a_total():
    """Read hours after a rollback stalled, the report said the canary was exposed for 10 min
    "so far": that was only until the rollback began, and the canary may still have traffic."""
    text = incident_report(guardrail_rollback(finished=False))
    assert f"**Exposed for:** at least 10.0 min (until {utc(T0 + 660)}, when the rollback began; " in text
    assert "so far" not in text


def aborted_on_real_time_under_a_faster_clock(*, finished: bool = True) -> RolloutRecord:
    """A weekly rollout run on `rollway up`'s 60x clock, paused at 25 % and aborted with no run
    owning it: `rollway abort` stamps the rollback on real time, hours before the rollout
    clock's shifts it follows in the history."""
    history = [started(), shift(60, 5, 0), passed(3660, 0), shift(7200, 25, 1, 5), passed(10800, 1),
               Transition(at=T0 + 600, kind="rollback-start", actor="carol", comment="aborted by carol: 500s on save")]
    if finished:
        history.append(Transition(at=T0 + 610, kind="rollback", actor="carol", to_weights=w(0),
                                  comment="aborted by carol: 500s on save"))
    return record(history, RolloutPhase.ROLLED_BACK if finished else RolloutPhase.ROLLING_BACK,
                  weights=w(0) if finished else w(25))


@pytest.mark.parametrize("finished", [True, False])
def test_a_rollback_stamped_on_another_clock_than_the_rollout_is_not_measured_against_it(finished):
    """The figures compared the rollback's real-time stamps with the rollout clock's: the
    weight when the rollback began was the 5 % of the only shift stamped earlier (the canary
    was at 25 %), the exposure 9 min of a rollout that ran for hours, and stage 2 lasted "0 s"."""
    rec = aborted_on_real_time_under_a_faster_clock(finished=finished)
    text = incident_report(rec)
    assert "- **Highest canary weight:** 25%" in text
    assert "- **Weight when the rollback began:** 25% (75/25 stable/canary)" in text
    (exposed,) = [x for x in text.splitlines() if x.startswith("- **Exposed for:**")]
    assert "not measurable from the ledger" in exposed and "another clock" in exposed
    assert "min" not in exposed and " s " not in exposed
    (stage_two,) = [x for x in rollout_report(rec).splitlines() if x.startswith("| 2/3 | 75/25 |")]
    assert "| 0 s |" not in stage_two
    if finished:
        assert "| two clocks |" in stage_two
    # Next steps name no window ending before it began.
    (logs,) = [x for x in text.splitlines() if "Read the canary's logs and metrics" in x]
    assert f"from {utc(T0 + 60)} to {utc(T0 + 610)}" not in logs and f"from {utc(T0 + 60)}" in logs
    # On one clock, the figures are as before.
    assert "**Exposed for:** 10.7 min" in incident_report(guardrail_rollback())


def test_a_rollout_holding_between_weekly_phases_says_which_passed_and_when_the_next_may_start():
    """The outcome read "paused (not finished)": nothing said the weekly phase had passed and the
    rollout waits for the schedule, nor when the next phase may start."""
    from rollway.weekly import describe, next_phase_due

    weekly = RolloutSpec(image=IMAGE)  # the default plan: week 1 at 5 %, then 25-50 %, then 75-100 %
    rec = record([started(), shift(60, 5, 0), passed(700, 0),
                  Transition(at=T0 + 700, kind="phase", actor="alice", comment="this phase ends at 5%")],
                 RolloutPhase.PAUSED, weights=w(5)).model_copy(update={
                     "spec_json": weekly.model_dump_json(), "weekly_phase_index": 0, "weekly_phase_passed": True,
                     "weekly_phase_started_at": T0})
    due = next_phase_due(T0, **weekly.phase_calendar())
    (outcome,) = [x for x in rollout_report(rec).splitlines() if x.startswith("- **Outcome:**")]
    assert outcome == (f"- **Outcome:** holding between weekly phases: {weekly.phases[0].name} passed, at 95/5 "
                       f"stable/canary; the next phase, {weekly.phases[1].name}, may start from "
                       f"{describe(due, weekly.weekly_timezone)} (the first advance_phase run from then on starts it)")
    # A paused rollout the record says nothing more of reads as before.
    odd = rec.model_copy(update={"weekly_phase_passed": False})
    assert "- **Outcome:** paused (not finished) at 95/5 stable/canary" in rollout_report(odd)


def test_an_unfinished_rollout_names_the_run_holding_it_and_whether_its_lease_lapsed():
    """A rollout whose run died read "progressing (not finished)", as one still driven: nothing
    said which run held it, nor that it had stopped renewing its lease."""
    running = record([started(), shift(60, 25, 1, 5)], RolloutPhase.PROGRESSING).model_copy(
        update={"owner": "flow-run 0f1e2d3c", "lease_expires": T0 + 900})
    (live,) = [x for x in rollout_report(running, now=T0 + 600).splitlines() if x.startswith("- **Held by:**")]
    assert live == f"- **Held by:** flow-run 0f1e2d3c, lease until {utc(T0 + 900)} (wall clock; live when this report " \
                   "was written)"
    (lapsed,) = [x for x in rollout_report(running, now=T0 + 4000).splitlines() if x.startswith("- **Held by:**")]
    assert lapsed.startswith(f"- **Held by:** flow-run 0f1e2d3c, whose lease lapsed at {utc(T0 + 900)} (wall clock): "
                             "that run stopped renewing it")
    assert "waits for an approval" in lapsed
    free = running.model_copy(update={"owner": None, "lease_expires": 0.0})
    assert "- **Held by:** no run (its lease is free)" in rollout_report(free, now=T0 + 600)
    # An ended rollout keeps its last holder in the ledger: not shown as holding it.
    assert "Held by" not in rollout_report(guardrail_rollback().model_copy(update={"owner": "flow-run 0f1e2d3c"}),
                                           now=T0 + 600)


def test_a_promotion_whose_window_is_open_names_its_holder_in_status_s_words(capsys):
    """The report named no holder for a promoted rollout: one whose monitoring window was still
    open read the same whether its run watched it or had died, where status's owner row said the
    run's lease had lapsed and that no run held the rollout. Said now as status says it."""
    from types import SimpleNamespace

    from rollway.cli.ops import print_status
    from rollway.targets import Targets

    rec = promoted_record()
    promote = next(i for i, t in enumerate(rec.history) if t.kind == "promote")
    window = RolloutSpec.from_record(rec.spec_json).monitor_seconds
    open_ = rec.model_copy(update={"history": rec.history[:promote + 1], "monitor_until": T0 + 2200 + window,
                                   "owner": "flow-run 0f1e2d3c", "lease_expires": T0 + 2400})

    def held_by(record: RolloutRecord, now: float) -> list[str]:
        return [x.removeprefix("- **Held by:** ") for x in rollout_report(record, now=now).splitlines()
                if x.startswith("- **Held by:**")]

    assert held_by(open_, T0 + 2300) == [f"flow-run 0f1e2d3c, lease until {utc(T0 + 2400)} (wall clock; live when "
                                         "this report was written)"]
    (lapsed,) = held_by(open_, T0 + 4000)
    print_status(SimpleNamespace(name=SERVICE, targets=Targets()), open_, open_.weights, None, limit=1,
                 wall=T0 + 4000)
    (owner,) = [" ".join(x.split()[1:]) for x in capsys.readouterr().out.splitlines() if x.startswith("owner")]
    assert lapsed == owner, (lapsed, owner)
    assert lapsed.startswith(f"flow-run 0f1e2d3c, whose lease lapsed at {utc(T0 + 2400)} (wall clock): no run holds "
                             "the rollout"), lapsed
    # Its window closed, the rollout has ended: no holder is named, as before.
    assert held_by(rec.model_copy(update={"owner": "flow-run 0f1e2d3c", "lease_expires": T0 + 2400}), T0 + 9999) == []


def test_times_ahead_of_the_wall_clock_are_said_to_be_on_a_faster_clock():
    """Under `rollway up`'s 60x clock the history's times run hours ahead of the wall clock that
    stamps leases and claims, and the report mixed them unannounced: a rollback "recorded at
    05:00" beside its claim "renewed until 23:59", both read as the same clock."""
    ahead = guardrail_rollback(finished=False).model_copy(
        update={"rollback_holder": "judge (flow run brave-fox)", "rollback_expires": T0 - 3 * 3600})
    wall = T0 - 3 * 3600 - 30  # the rollout clock is three hours ahead
    for text in (rollout_report(ahead, now=wall), incident_report(ahead, now=wall)):
        (clock,) = [x for x in text.splitlines() if x.startswith("- **Clock:**")]
        assert "run ahead of the wall clock (by 3.2 h when this report was written)" in clock
        assert "sped-up clock" in clock and "leases and claims are on the wall clock" in clock
    # On one clock, or without the time, nothing is said.
    assert "**Clock:**" not in rollout_report(ahead, now=T0 + 700) + incident_report(ahead, now=T0 + 700)
    assert "**Clock:**" not in rollout_report(ahead) + incident_report(ahead)


def back_from_five(ledger: FakeLedger, at: float, actor: str) -> RolloutRecord:
    """The rollback's end recorded at ``at``, the traffic back from 5 %: the rollout as stored."""
    ledger.record(SERVICE, owner=None, now=at, transition=Transition(
        at=at, kind="rollback", actor=actor, from_weights=w(5), to_weights=w(0)),
        phase=RolloutPhase.ROLLED_BACK, weights=w(0))
    return ledger.get(SERVICE)


def test_a_run_that_took_the_rollout_over_from_a_dead_one_is_in_both_reports():
    """The takeover as the ledger writes it: run-1 died at 5 %, run-2 took its lapsed lease over
    and went on until the judge rolled back. Neither report said the rollout changed hands."""
    ledger = FakeLedger()
    history = [started(), shift(60, 5, 0)]
    ledger.create(record(history, RolloutPhase.PROGRESSING), owner="flow-run/run-1", now=T0, lease_seconds=300)
    ledger.acquire(SERVICE, owner="flow-run/run-2", now=T0 + 400, lease_seconds=300, wall=T0 + 400)
    begin_rollback(ledger, SERVICE, actor="judge", reason="5%: canary is worse", now=T0 + 460)
    rolled_back = back_from_five(ledger, T0 + 500, "rollback")
    said = (f"{utc(T0 + 400)}: flow-run/run-2 took the rollout over from flow-run/run-1, whose lease lapsed at "
            f"{utc(T0 + 300)} (wall clock)")
    incident = incident_report(rolled_back)
    assert f"## Runs that took the rollout over\n\n- {said}" in incident
    assert f"| {utc(T0 + 400)} | takeover | flow-run/run-2 |" in rollout_report(rolled_back)


def test_a_rollback_that_took_over_a_dead_rollbacks_claim_is_in_both_reports():
    """The hook's rollback died part-way (its claim lapsed) and erin's finished it: the incident
    report said only that the hook recorded the intent and erin the end, not that the rollback
    changed hands, nor when, nor whose had stopped."""
    ledger = FakeLedger()
    ledger.create(record([started(), shift(60, 5, 0)], RolloutPhase.PROGRESSING), owner="flow-run/run-1", now=T0,
                  lease_seconds=300)
    begin_rollback(ledger, SERVICE, actor="hook", reason="run cancelled", now=T0 + 100, holder="hook (run 1)",
                   lease_seconds=60)
    ledger.claim_rollback(SERVICE, holder="erin (process 7)", now=T0 + 400, lease_seconds=60, at=T0 + 400)
    rolled_back = back_from_five(ledger, T0 + 420, "erin")
    said = (f"- {utc(T0 + 400)}: erin (process 7) took the rollback over from hook (run 1), whose claim lapsed at "
            f"{utc(T0 + 160)} (wall clock)")
    incident = incident_report(rolled_back)
    moved_back = incident.split("## Traffic moved back")[1].split("## Rollback steps")[0]
    assert said in moved_back, moved_back
    assert "Runs that took the rollout over" not in incident
    assert f"| {utc(T0 + 400)} | takeover | erin (process 7) |" in rollout_report(rolled_back)


def test_the_rollout_report_names_the_digest_the_canary_ran_not_only_the_tag():
    pinned = IMAGE.rsplit(":", 1)[0] + "@sha256:" + "ab" * 32
    text = rollout_report(promoted_record().model_copy(update={"pinned_image": pinned}))
    assert f"- **Pinned as:** `{pinned}` (what the canary ran" in text
    # Recorded before images were pinned: the report says the tag may name another image by now.
    assert "**Pinned as:** not recorded (the rollout predates pinning" in rollout_report(promoted_record())
    # Given by digest: the image line says it all.
    by_digest = promoted_record().model_copy(update={"image": pinned, "pinned_image": pinned})
    assert "Pinned as" not in rollout_report(by_digest)
    # The incident report names it beside the tag.
    rolled_back = guardrail_rollback().model_copy(update={"pinned_image": pinned})
    assert f"`{IMAGE}` (`{pinned}`) was rolled back" in incident_report(rolled_back)


def test_a_rollback_begun_again_after_the_first_died_is_reported_as_the_first_ones_trigger():
    """The hook's rollback died after recording its start; the monitor, which had read the rollout
    open, began its own once the hook's claim lapsed and finished it. Both reports named the
    monitor as what triggered the rollback: its begin wrote a second rollback-start."""
    ledger = FakeLedger()
    ledger.create(record([started(), shift(60, 5, 0)], RolloutPhase.PROGRESSING), owner="flow-run/run-1", now=T0,
                  lease_seconds=300)
    begin_rollback(ledger, SERVICE, actor="state hook on_failure", reason="the run failed: boom", now=T0 + 100,
                   holder="hook (run 1)", lease_seconds=60)
    begin_rollback(ledger, SERVICE, actor="monitor", reason="monitoring after promotion: 5xx", now=T0 + 400,
                   holder="monitor (run 2)", lease_seconds=60)
    rolled_back = back_from_five(ledger, T0 + 420, "monitor")
    incident = incident_report(rolled_back)
    assert "- **Recorded by:** state hook on_failure at" in incident
    assert "- **Reason:** the run failed: boom" in incident
    moved_back = incident.split("## Traffic moved back")[1].split("## Rollback steps")[0]
    assert f"- {utc(T0 + 400)}: monitor (run 2) took the rollback over from hook (run 1)" in moved_back, moved_back
    assert "**Rolled back because:** the run failed: boom (by state hook on_failure" in rollout_report(rolled_back)


def two_rollback_starts() -> RolloutRecord:
    """A rollback of 5 % by the judge, with the second start a record written before a rollback
    taking over another's kept one start could hold (here the monitor's)."""
    return record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 100, kind="rollback-start", actor="judge", comment="5%: canary 3% vs baseline 0.1%"),
        Transition(at=T0 + 400, kind="rollback-start", actor="monitor", comment="monitoring after promotion: 5xx"),
        Transition(at=T0 + 420, kind="rollback", actor="monitor", from_weights=w(5), to_weights=w(0)),
    ], RolloutPhase.ROLLED_BACK)


def test_a_record_holding_two_rollback_starts_names_the_first_as_the_trigger():
    """Records written before a rollback taking over another's kept one rollback-start can hold a
    second: the first is still what triggered the rollback, and the traffic at it the exposure."""
    rolled_back = two_rollback_starts()
    trigger = rollback_trigger(rolled_back)
    assert (trigger.kind, trigger.who, trigger.at) == ("judge", "judge", T0 + 100)
    assert "- **Recorded by:** judge at" in incident_report(rolled_back)


def test_an_unfinished_rollback_whose_notice_went_out_does_not_say_the_finishing_run_sends_it():
    """Its run died after paging: the incident report said the notice was "not confirmed" and that
    the finishing run sends it, which that run no longer does."""
    unfinished = record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 100, kind="rollback-start", actor="judge", comment="5%: canary 3% vs baseline 0.1%"),
        Transition(at=T0 + 160, kind="notified", actor="judge", message_id="sns-7"),
    ], RolloutPhase.ROLLING_BACK)
    notice = incident_report(unfinished, alert_topic="webordinary-alerts").split("## Notification")[1]
    assert (f"Sent on `webordinary-alerts` at {utc(T0 + 160)} by judge: SNS message id `sns-7`") in notice, notice
    assert "the run that finishes it does not send it again" in notice and "Not confirmed" not in notice


def stopped_after_paging(message_id: str | None) -> RolloutRecord:
    """A rollback under way whose run put the traffic back, paged people that a step failed, and
    stopped: that page is not a ``notified`` entry (the finishing run sends the rollback's notice),
    but the entry of the stopped rollback says it went out. ``message_id`` None: recorded before
    the stopped entry kept SNS's id."""
    return record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 100, kind="rollback-start", actor="judge", comment="5%: canary 3% vs baseline 0.1%"),
        Transition(at=T0 + 160, kind="rollback-stopped", actor="judge", from_weights=w(5), to_weights=w(0),
                   message_id=message_id,
                   comment="done: weights 100/0 verified; canary scaled to 0 on td:1; notified; not done: disable "
                           "every bound flag (could not disable bound feature flag(s) beta_editor: throttled)"),
    ], RolloutPhase.ROLLING_BACK)


@pytest.mark.parametrize("message_id, said", [
    ("sns-9", "SNS message id `sns-9`"),
    (None, "its SNS message id is not recorded"),
])
def test_a_stopped_rollback_whose_page_of_the_failed_step_went_out_says_people_were_paged(message_id, said):
    """The report said "Not confirmed: the rollback's notice ... goes out after the traffic is back", as if
    nobody had been told, while its steps listed "notified" and on-call held the page."""
    notice = incident_report(stopped_after_paging(message_id), alert_topic="webordinary-alerts"
                             ).split("## Notification")[1].split("##")[0]
    assert (f"People were paged on `webordinary-alerts` by {utc(T0 + 160)} by judge, whose rollback put the traffic "
            "back and stopped with a step not done") in notice, notice
    assert said in notice, notice
    assert "Not confirmed" not in notice, notice
    # What is not known yet is said too: the notice that the rollback finished is still to come.
    assert "the run that finishes the rollback sends the notice that it finished" in notice, notice


def test_a_stopped_rollback_that_paged_nobody_still_says_the_notice_is_not_confirmed():
    quiet = stopped_after_paging(None)
    entry = quiet.history[-1]
    quiet = quiet.model_copy(update={"history": [*quiet.history[:-1], entry.model_copy(update={
        "comment": entry.comment.replace("; notified;", "; not notified (another rollback of this rollout told "
                                                        "people);")})]})
    notice = incident_report(quiet, alert_topic="webordinary-alerts").split("## Notification")[1].split("##")[0]
    assert "Not confirmed" in notice and "People were paged" not in notice, notice


def notice_begun(*after: Transition, **claim) -> RolloutRecord:
    """A rollback under way whose run recorded setting out to send its notice, then ``after``."""
    return record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 100, kind="rollback-start", actor="judge", comment="5%: canary 3% vs baseline 0.1%"),
        Transition(at=T0 + 160, kind="notifying", actor="carol", comment="the rollback's notice is being sent"),
        *after,
    ], RolloutPhase.ROLLING_BACK).model_copy(update=claim)


def test_a_rollback_that_stopped_while_sending_its_notice_says_people_may_not_have_been_paged():
    """Its run stopped between the publish and recording it: the report said the finishing run
    sends the notice, as if nobody had been paged, when people may have been."""
    notice = incident_report(notice_begun(), alert_topic="webordinary-alerts", now=T0 + 900).split("## Notification")[1]
    assert (f"the rollback's notice may not have been sent: carol's run stopped after {utc(T0 + 160)}, between "
            "sending it and recording whether SNS took it; check with the topic's subscribers") in notice, notice
    assert "its notice opening with a line saying it may repeat that one" in notice
    assert "the finishing run sends it" not in notice


def test_a_rollback_whose_claim_is_live_may_be_sending_its_notice_now():
    live = notice_begun(rollback_holder="carol (flow run brave-otter, 1234)", rollback_expires=T0 + 220)
    notice = incident_report(live, now=T0 + 200).split("## Notification")[1]
    assert (f"the rollback's claim is renewed until {utc(T0 + 220)} (wall clock), so its run may be sending it "
            "now") in notice, notice
    assert "stopped" not in notice


def test_without_the_time_the_report_says_the_same_of_the_claim_in_its_advice_and_its_notice():
    """Without ``now`` the advice said the rollback "is being carried out" by carol, follow that
    run, while the notification section of the same report said carol's run had stopped, and to
    run the rollback again: no lapse is claimed without the time, in either."""
    claimed = notice_begun(rollback_holder="carol (flow run brave-otter, 1234)", rollback_expires=T0 + 220)
    text = incident_report(claimed)
    assert "**It is being carried out by carol (flow run brave-otter, 1234)**" in text, text
    notice = text.split("## Notification")[1].split("##")[0]
    assert (f"the rollback's claim is renewed until {utc(T0 + 220)} (wall clock), so its run may be sending it "
            "now") in notice, notice
    assert "stopped" not in notice, notice


def test_a_notice_sns_refused_is_in_the_incident_report_with_its_reason():
    refused = notice_begun(Transition(at=T0 + 170, kind="notice-failed", actor="carol",
                                      comment="the rollback's notice was not sent: NotFound: Topic does not exist"))
    notice = incident_report(refused).split("## Notification")[1].split("##")[0]
    assert f"SNS refused the notice: NotFound: Topic does not exist (carol's run, at {utc(T0 + 170)})" in notice, notice
    # Refused is known: nobody was paged by it, so nothing says the page may have gone out.
    assert "may not have been sent" not in notice and "the finishing run sends it" in notice


def test_a_notice_whose_answer_sns_lost_says_people_may_have_been_paged_not_refused():
    """The publish was sent and SNS's answer lost (a read timeout): the report said SNS refused it
    and nobody was paged, when people may have been."""
    lost = notice_begun(Transition(at=T0 + 170, kind="notice-unanswered", actor="carol",
                                   comment="the rollback's notice may have been sent, SNS's answer was lost: "
                                           "ReadTimeoutError: Read timeout on endpoint URL"),
                        rollback_holder="carol (flow run brave-otter, 1234)", rollback_expires=T0 + 220)
    notice = incident_report(lost, now=T0 + 200).split("## Notification")[1].split("##")[0]
    assert (f"**Not known whether people were paged:** people may have been paged: carol's run sent the rollback's "
            f"notice at {utc(T0 + 160)} and SNS's answer was lost (ReadTimeoutError: Read timeout on endpoint URL)"
            ) in notice, notice
    assert "its notice opening with a line saying it may repeat that one" in notice
    assert "SNS refused" not in notice and "may be sending it now" not in notice, notice


def test_a_record_holding_two_rollback_starts_shows_the_rollback_once_in_its_stage():
    """The second start (a rollback that took over one that died, recorded before a takeover kept
    one start) is no second rollback: the stage read "rolled back (judge) ...; then rolled back
    (monitor) ..." as if the traffic had come back twice."""
    rolled_back = two_rollback_starts()
    (line,) = stage_lines(rolled_back)
    assert line.verdict == "rolled back (judge: 5%: canary 3% vs baseline 0.1%)", line.verdict
    assert line.ended_at == T0 + 420
    for text in (rollout_report(rolled_back), incident_report(rolled_back)):
        (row,) = [x for x in text.splitlines() if x.startswith("| 1/3 | 95/5 |")]
        assert row.count("rolled back") == 1, row


def flag_move(at: float, line: str, actor: str = "alice") -> Transition:
    return Transition(at=T0 + at, kind="flag", actor=actor, comment=line)


def test_the_rollout_report_says_where_the_rollout_left_each_flag_it_binds():
    """The flags' moves were only among every transition, and a rollback's disable in none: the
    report did not say whether a bound flag still served users."""
    history = [started(), shift(60, 5, 0), flag_move(60, "sqs-sessions: off 0% -> on 5% (v2)"),
               passed(700, 0), shift(710, 25, 1, 5),
               flag_move(710, "sqs-sessions: on 5% -> on 25% (v3): stage 25% -> next")]
    text = rollout_report(record(history, RolloutPhase.PROGRESSING, flags=("sqs-sessions", "new-editor")))
    assert ("**Feature flags it binds** (as the ledger recorded them; `rollway flags list` shows them now): "
            f"`sqs-sessions` on 25% (v3), set by alice at {utc(T0 + 710)}; `new-editor` not moved by this rollout"
            in text), text

    rolled_back = rollout_report(guardrail_rollback(flags=("sqs-sessions",)))
    assert f"`sqs-sessions` disabled by the rollback at {utc(T0 + 700)}" in rolled_back
    under_way = rollout_report(guardrail_rollback(finished=False, flags=("sqs-sessions",)))
    assert "`sqs-sessions` not moved by this rollout; the rollback disables it, not recorded as done" in under_way
    kept = guardrail_rollback(flags=("sqs-sessions",))
    kept = kept.model_copy(update={"history": (*kept.history, flag_move(
        700, "sqs-sessions: left on 5% (v4): re-enabled by oncall after the rollback disabled it", "judge"))})
    assert "`sqs-sessions` **left on 5% (v4)** by the rollback, as a person had set it" in rollout_report(kept)
    assert "Feature flags" not in rollout_report(promoted_record())  # none bound: no line


def test_the_incident_reports_next_steps_name_where_to_look_in_aws():
    """"Read the canary's logs" and "check the dead-letter queues" left a responder to find the
    cluster, the dashboard and the queues' names in the targets block."""
    from rollway.targets import Targets

    text = incident_report(guardrail_rollback(), targets=Targets())
    assert ("(ECS service `webordinary-edit-service-canary` in cluster `webordinary-edit-cluster`, region us-west-2; "
            "metrics in `Webordinary/Production`, dashboard `webordinary-edit-dashboard`): confirm what failed" in text)
    assert ("Check the dead-letter queues (`webordinary-email-dlq`, `webordinary-edit-input-dlq`, "
            "`webordinary-edit-output-dlq`) for messages" in text)


def test_the_flow_runs_that_drove_a_rollout_are_named_by_name_and_id_where_recorded():
    """The reports named no flow run: the lease's owner leaves the record when its run ends, so a
    reader could not find the runs' logs and artifacts in the Prefect UI. A run names itself on
    its first entry; a takeover recorded before entries named runs still gives both runs' ids."""
    ledger = FakeLedger()
    first = "russet-spoonbill (0b5d5c6e-0000-4000-8000-000000000001)"
    history = [started().model_copy(update={"run": first}), shift(60, 5, 0)]
    ledger.create(record(history, RolloutPhase.PROGRESSING), owner="flow-run/0b5d5c6e-0000-4000-8000-000000000001",
                  now=T0, lease_seconds=300)
    ledger.acquire(SERVICE, owner="flow-run/run-2", now=T0 + 400, lease_seconds=300, wall=T0 + 400)
    taken = ledger.get(SERVICE)
    said = rollout_report(taken)
    assert (f"- **Flow runs** (Prefect UI, Runs; search by name or id): `{first}` (started it, {utc(T0)}); "
            f"`run-2` (took it over, {utc(T0 + 400)})") in said
    begin_rollback(ledger, SERVICE, actor="judge", reason="5%: canary is worse", now=T0 + 460)
    assert f"`{first}` (started it, {utc(T0)}); `run-2` (took it over" in incident_report(back_from_five(
        ledger, T0 + 500, "rollback"))
    # Recorded before runs were named: the takeover still names the run it took the rollout from.
    old = taken.model_copy(update={"history": tuple(t.model_copy(update={"run": None}) for t in taken.history)})
    assert ("`0b5d5c6e-0000-4000-8000-000000000001` (drove it until its lease lapsed, before "
            f"{utc(T0 + 400)}); `run-2` (took it over") in rollout_report(old)
    assert "- **Flow runs** (Prefect UI, Runs; search by name or id): none recorded" in rollout_report(
        record([started(), shift(60, 5, 0)], RolloutPhase.PROMOTED))


def test_a_waiting_rollouts_since_and_deadline_read_on_one_clock_on_a_sped_up_rollout():
    """Under `rollway up`'s 60x the pause's entry is stamped hours ahead of the wall clock its
    deadline is on: the line read "since 13:11 ...: unanswered by 09:02 (wall clock)", a pause
    that seemed to have timed out before it began. Both are on the wall clock now, in UTC."""
    from datetime import datetime, timezone

    from flows.approvals import pause_question
    from rollway.decide import Pause

    # Asked as the run asks it, at 08:02 on the wall clock: the report reads back what the run writes.
    question = pause_question(Pause(stage_index=1, cause="approval", reason="approval needed before 25%"),
                              Approvals(on_timeout="hold"), datetime(2027, 1, 15, 8, 2, tzinfo=timezone.utc))
    ahead = 5 * 3600  # the rollout clock's lead over the wall clock
    pause = Transition(at=T0 + ahead, kind="pause", actor="alice", to_stage=1, comment=question)
    said = rollout_report(record([started(), shift(60, 5, 0), passed(600, 0), pause], RolloutPhase.PROGRESSING,
                                 weights=w(5)))
    assert ("since 2027-01-15 08:02:00 UTC (wall clock): approval pause: approval needed before 25%; unanswered by "
            "2027-01-15 09:02:00 UTC (wall clock)") in said, said
    # A timeout that holds is recorded once, when that deadline came: said on the same clock.
    timeout = Transition(at=T0 + ahead + 60 * 3600, kind="timeout", actor="timeout", to_stage=1,
                         comment="hold: no answer within 3600 s")
    held = rollout_report(record([started(), shift(60, 5, 0), passed(600, 0), pause, timeout],
                                 RolloutPhase.PROGRESSING, weights=w(5)))
    assert ("since 2027-01-15 08:02:00 UTC (wall clock); it timed out at 2027-01-15 09:02:00 UTC (wall clock) and "
            "is asked again") in held, held
    # A pause recorded without a deadline keeps its entry's time, said to be on the rollout clock.
    bare = pause.model_copy(update={"comment": "approval pause: approval needed before 25%"})
    assert f"since {utc(T0 + ahead)} (rollout clock): approval pause" in rollout_report(
        record([started(), shift(60, 5, 0), passed(600, 0), bare], RolloutPhase.PROGRESSING, weights=w(5)))


def test_a_rollout_whose_newest_entry_is_its_runs_pause_reads_as_waiting_and_an_answer_ends_it():
    """Read from the ledger alone, the report said "progressing (not finished)" of a rollout whose
    run waited for a person."""
    pause = Transition(at=T0 + 700, kind="pause", actor="alice", to_stage=1,
                       run="russet-spoonbill (0b5d5c6e-0000-4000-8000-000000000001)",
                       comment="approval pause: approval needed before 25%; unanswered by 2027-01-15 09:02:00 UTC "
                               "(wall clock) the rollout rolls back")
    waiting = record([started(), shift(60, 5, 0), passed(600, 0), pause], RolloutPhase.PROGRESSING, weights=w(5))
    said = rollout_report(waiting)
    # Its deadline (wall clock) less the spec's hour: the time the pause began on that same clock.
    assert ("- **Outcome:** **waiting for a person's approval** for stage 2/3 (25%), at 95/5 stable/canary, since "
            "2027-01-15 08:02:00 UTC (wall clock): approval pause: approval needed before 25%") in said
    assert "(the paused flow run russet-spoonbill (0b5d5c6e-0000-4000-8000-000000000001): **Resume**)" in said
    assert "| since 2027-01-15 08:02:00 UTC (wall clock) | - | - | **waiting for an answer** | 25% |" in said
    answered = Transition(at=T0 + 800, kind="approve", actor="bob", to_stage=1, comment="approve: ok")
    assert "waiting" not in rollout_report(record([started(), shift(60, 5, 0), passed(600, 0), pause, answered],
                                                  RolloutPhase.PROGRESSING, weights=w(5)))


def test_what_users_get_after_a_rollback_is_said_from_what_the_rollback_recorded_never_guessed():
    """The report named the canary's restored revision and nothing of what the stable service ran:
    a reader took the canary's "previous" for what users get. Said only as recorded."""
    rec = guardrail_rollback()
    end = rec.history[-1].model_copy(update={"stable_task_definition": "webordinary-edit-task:7"})
    text = incident_report(rec.model_copy(update={"history": rec.history[:-1] + (end,)}))
    assert ("- **Users get since the rollback:** webordinary-edit-task:7, the task definition the stable service ran "
            "when the rollback put all the traffic on it (recorded by the rollback;") in text
    # An end recorded before rollbacks kept it, and a rollback not recorded as finished: not guessed.
    for rec, why in ((guardrail_rollback(), "this rollback's end was recorded before rollbacks kept it"),
                     (guardrail_rollback(finished=False), "the rollback is not recorded as finished")):
        said = [line for line in incident_report(rec).splitlines() if line.startswith("- **Users get")]
        assert said == [f"- **Users get since the rollback:** not recorded ({why}): `rollway status` reads where the "
                        "traffic is and what the stable service runs"], said
    assert "previous webordinary-edit-task:3 (webordinary-edit-service-canary's before the rollout, taking no traffic)" \
        in rollout_report(guardrail_rollback())


REFUSED = Transition(at=T0 + 170, kind="notice-failed", actor="carol",
                     comment="the rollback's notice was not sent: NotFound: Topic does not exist")


def test_a_refused_notice_under_the_notice_a_later_run_sent_says_it_came_from_the_earlier_run():
    """carol's run was refused by SNS; dave's run, once the topic was fixed, sent the notice and
    finished the rollback. The report showed carol's refusal right under dave's message id, as if
    the notice sent had been refused."""
    finished = record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 100, kind="rollback-start", actor="judge", comment="5%: canary 3% vs baseline 0.1%"),
        REFUSED,
        Transition(at=T0 + 400, kind="notified", actor="dave", message_id="sns-9"),
        Transition(at=T0 + 410, kind="rollback", actor="dave", from_weights=w(5), to_weights=w(0), message_id="sns-9"),
    ], RolloutPhase.ROLLED_BACK)
    notice = incident_report(finished).split("## Notification")[1].split("##")[0]
    assert "SNS message id `sns-9`" in notice, notice
    assert (f"An earlier run's notice did not go out: SNS refused the notice: NotFound: Topic does not exist (carol's "
            f"run, at {utc(T0 + 170)}); dave's run sent the notice later, at {utc(T0 + 400)}.") in notice, notice


def test_a_refused_notice_under_the_notice_a_later_run_sent_before_stopping_says_so():
    unfinished = record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 100, kind="rollback-start", actor="judge", comment="5%: canary 3% vs baseline 0.1%"),
        REFUSED,
        Transition(at=T0 + 400, kind="notified", actor="dave", message_id="sns-9"),
    ], RolloutPhase.ROLLING_BACK)
    notice = incident_report(unfinished).split("## Notification")[1].split("##")[0]
    assert f"dave's run sent the notice later, at {utc(T0 + 400)}." in notice, notice
    assert "An earlier run's notice did not go out: SNS refused the notice" in notice, notice


def deployed_then_rolled_back(*rollback: Transition) -> RolloutRecord:
    """A rollout whose canary was deployed and no shift recorded, then rolled back by carol."""
    return record([started(), Transition(at=T0 + 20, kind="deploy", actor="alice", comment="canary on :4"),
                   Transition(at=T0 + 600, kind="rollback-start", actor="carol", comment="the run died"),
                   *rollback], RolloutPhase.ROLLING_BACK, weights=w(0))


def test_a_stopped_rollback_that_found_the_canary_taking_traffic_says_what_it_took():
    """The rollback found 5 % on a canary no recorded shift had sent traffic to, and the load
    balancer refused its move: the report says the 5 % as found, not "the ledger cannot tell"."""
    rec = deployed_then_rolled_back(Transition(at=T0 + 610, kind="rollback-stopped", actor="carol",
                                               from_weights=w(5), to_weights=w(5), comment="done: nothing"))
    report = " ".join(incident_report(rec).split())
    assert "cannot tell" not in report, report
    assert ("but the rollback found it taking **5%** of the traffic (95/5 stable/canary) when carol's rollback first "
            f"read the load balancer, before it moved anything (recorded at {utc(T0 + 610)})") in report, report
    assert (f"The canary took 5% from after {utc(T0 + 20)} (the last entry before the rollback) until the rollback, "
            "whose traffic's return is not recorded") in report, report


def test_a_rollback_that_found_no_traffic_on_the_canary_still_cannot_rule_out_an_earlier_run_of_it():
    """An earlier run of the rollback may have moved the traffic back and died before recording
    anything: the next one finds 100/0, which does not show that the canary took none."""
    rec = deployed_then_rolled_back(Transition(at=T0 + 900, kind="rollback", actor="dave", from_weights=w(0),
                                               to_weights=w(0), comment="the run died"))
    rec = rec.model_copy(update={"phase": RolloutPhase.ROLLED_BACK})
    report = " ".join(incident_report(rec).split())
    assert "so the ledger cannot tell that it took no traffic" in report, report
    assert ("dave's rollback found none of the traffic on it (100/0 stable/canary when it first read the load "
            "balancer), as it would after an earlier run of the rollback moved the traffic back") in report, report
    assert "the rollback records only the weights it read back" not in report, report
    assert "5% (its first stage) from after" in report, report


def test_the_highest_canary_weight_counts_what_the_rollback_found_on_the_load_balancer():
    """The rollback read 25 % on the load balancer before moving anything (a run that moved the
    traffic and died before recording it): "Highest canary weight: 5%", the recorded moves' alone,
    read lower than the weight the report gives for when the rollback began."""
    history = [started(), shift(60, 5, 0),
               Transition(at=T0 + 660, kind="rollback-start", actor="judge", comment="5%: over the 1% guardrail"),
               Transition(at=T0 + 700, kind="rollback", actor="judge", from_weights=w(25), to_weights=w(0),
                          comment="5%: over the 1% guardrail")]
    text = incident_report(record(history, RolloutPhase.ROLLED_BACK, weights=w(0)))
    (peak,) = [x for x in text.splitlines() if x.startswith("- **Highest canary weight:**")]
    assert peak.startswith("- **Highest canary weight:** 25%"), peak
    assert "the recorded moves reached 5%" in peak, peak
    assert "- **Weight when the rollback began:** 25% (75/25 stable/canary)" in text


def test_the_rollout_report_says_what_the_monitoring_window_measured():
    """The outcome said only "monitoring window closed (decommission, ...)": a window in which
    most looks counted no requests read as a watched, healthy hour. Its closing entry says how many
    looks measured an error rate, and the report shows it."""
    closing = ("60 minutes of monitoring passed; 40 of its 61 looks counted requests to the new version; no error "
               "rate was measured in the others (21 counted no requests); webordinary-edit-service scaled to 0")
    rec = promoted_record()
    rec = rec.model_copy(update={"history": tuple(
        t.model_copy(update={"kind": "decommission", "comment": closing, "actor": "operator"}) if t.kind == "watched"
        else t for t in rec.history)})
    text = rollout_report(rec)
    (line,) = [x for x in text.splitlines() if x.startswith("- **Monitoring window:**")]
    assert closing in line and "operator" in line and utc(T0 + 5800) in line, line


def _alternating_wait(askings: int) -> list[Transition]:
    """The entries an older release wrote for a pause asked ``askings`` times, its cause alternating
    (inconclusive, metrics, ...), each asking timing out under a policy that holds."""
    entries = []
    for n in range(askings):
        cause, why = (("inconclusive", "stage over, no canary requests"), ("metrics", "metrics unavailable"))[n % 2]
        due = utc(T0 + 600 * (n + 2))
        entries.append(Transition(at=T0 + 600 * (n + 1), kind="pause", actor="alice", to_stage=0,
                                  comment=f"{cause} pause: 5%: {why}; unanswered by {due} (wall clock) the rollout "
                                          "asks again"))
        if n < askings - 1:
            entries.append(Transition(at=T0 + 600 * (n + 2), kind="timeout", actor="timeout", to_stage=0,
                                      comment="hold: no answer within 600 s", verdict=f"5%: {why}"))
    return entries


def test_a_ledger_written_before_the_open_pause_was_kept_reads_its_question_from_the_entries():
    from rollway.reports import open_question, waiting_pause

    old = record([started(), shift(60, 5, 0), *_alternating_wait(4)], RolloutPhase.PROGRESSING, weights=w(5))
    assert old.open_pause is None
    pause = waiting_pause(old)
    assert pause is old.history[-1] and open_question(old, pause).startswith("metrics pause: 5%")
    said = rollout_report(old)
    assert "**waiting for a person's approval** for stage 1/3 (5%)" in said and "metrics pause: 5%" in said
    # Its rows stay as they were written: one per recorded timeout, and the waiting pause.
    approvals = said.split("## Approvals")[1].split("##")[0]
    assert approvals.count("| timeout | timed out |") == 3 and approvals.count("**waiting for an answer**") == 1
    assert " times, causes: " not in approvals


def test_the_question_asked_now_is_read_from_the_record_not_from_the_newest_pause_entry():
    """Each question is recorded once per wait: asked for the inconclusive cause again, the newest
    entry is still the metrics pause, and status gave the question nobody was asked any more."""
    from rollway.ledger import OpenPause
    from rollway.reports import open_question, waiting_pause

    entries = _alternating_wait(2)  # inconclusive, timeout, metrics
    inconclusive = entries[0]
    now = ("inconclusive pause: 5%: stage over, no canary requests; unanswered by "
           f"{utc(T0 + 1800 + 3600)} (wall clock) the rollout asks again")  # the spec's timeout: an hour
    asked = record([started(), shift(60, 5, 0), *entries], RolloutPhase.PROGRESSING, weights=w(5)).model_copy(
        update={"open_pause": OpenPause(stage=0, cause="inconclusive", question=now, since=T0 + 600, asked=3,
                                        causes=("inconclusive", "metrics"))})
    assert waiting_pause(asked) is inconclusive and open_question(asked, inconclusive) == now
    said = rollout_report(asked)
    assert f"since {utc(T0 + 600)} (wall clock); it timed out at {utc(T0 + 1800)} (wall clock)" in said, said
    approvals = said.split("## Approvals")[1].split("##")[0]
    (row,) = [line for line in approvals.splitlines() if line.startswith("| ") and not line.startswith("| when")]
    assert f"asked 3 times, causes: inconclusive, metrics; last asked: {now}" in row, row
    # A question no pause entry of the wait records (a record left inconsistent) is not believed.
    stray = asked.model_copy(update={"open_pause": asked.open_pause.model_copy(update={"cause": "approval"})})
    assert waiting_pause(stray) is entries[-1]


@pytest.mark.parametrize("timed_out, asked, says", [
    # Asked again after the refusal alone: it said "it timed out at 08:10", nothing having timed out.
    (False, 2, "; an answer was refused (dana's), and it is asked again at 2027-01-15 08:10:00 UTC (wall clock): "),
    (True, 3, "; it timed out, and an answer was refused (dana's), and it is asked again at "
              "2027-01-15 08:10:00 UTC (wall clock): "),
    # Its run stopped between the refusal and asking again: no asking to name, the refusal still said.
    (False, 1, "since 2027-01-15 08:02:00 UTC (wall clock); an answer was refused (dana's): "),
])
def test_a_pause_asked_again_after_a_refused_answer_says_so_and_not_that_it_timed_out(timed_out, asked, says):
    """Records as the progressive flow writes them: the pause entry once per wait, a refused answer
    beside the history, and the open pause's asking count, which counts the asking after a refusal."""
    from datetime import datetime, timezone

    from flows.approvals import pause_question
    from rollway.decide import Pause
    from rollway.ledger import OpenPause, RefusedAnswer

    pause = Pause(stage_index=0, cause="inconclusive", reason="5%: stage over, no canary requests")
    first = pause_question(pause, Approvals(on_timeout="hold"), datetime(2027, 1, 15, 8, 2, tzinfo=timezone.utc))
    now = pause_question(pause, Approvals(on_timeout="hold"), datetime(2027, 1, 15, 8, 10, tzinfo=timezone.utc))
    entries = [started(), shift(60, 5, 0), Transition(at=T0 + 120, kind="pause", actor="alice", to_stage=0,
                                                      comment=first)]
    if timed_out:
        entries.append(Transition(at=T0 + 180, kind="timeout", actor="timeout", to_stage=0,
                                  comment="hold: no answer within 3600 s", verdict=pause.reason))
    refused = RefusedAnswer(at=T0 + 240, actor="dana", action="approve", next_weight=50, to_stage=0,
                            question=pause.reason, reason="next_weight (50%) applies only at an approval pause")
    waiting = record(entries, RolloutPhase.PROGRESSING, weights=w(5)).model_copy(update={
        "refused_answers": (refused,),
        "open_pause": OpenPause(stage=0, cause="inconclusive", question=now if asked > 1 else first,
                                since=datetime(2027, 1, 15, 8, 2, tzinfo=timezone.utc).timestamp(), asked=asked,
                                causes=("inconclusive",))})
    outcome = rollout_report(waiting).split("- **Outcome:** ", 1)[1].splitlines()[0]
    assert says in outcome, outcome
    assert ("timed out" in outcome) is timed_out, outcome


HELD_LINE = ("sqs-sessions: left on 5% (v4): rollout 20270301-billing holds it (stage 5%, set by rollway at "
             "2027-03-01T09:00:00Z) and rollout r1 never set it; `rollway flags set sqs-sessions --no-enabled` turns "
             "it off for that rollout's users too")


def test_a_flag_the_rollback_left_to_another_rollout_is_not_reported_as_a_persons_choice():
    """A rollback leaves alone a bound flag another rollout holds and its own rollout never set:
    both reports said it was left on "as a person had set it", sending on-call to ask who."""
    held = guardrail_rollback(flags=("sqs-sessions",))
    held = held.model_copy(update={"history": (*held.history, flag_move(700, HELD_LINE, "judge"))})
    rollout, incident = rollout_report(held), incident_report(held)
    for text in (rollout, incident):
        assert "as a person" not in text, text
    assert ("`sqs-sessions` **left on 5% (v4)** by the rollback: rollout 20270301-billing holds it" in rollout), rollout
    assert "**left on 5% (v4)**, another rollout holds it: " in incident and "20270301-billing" in incident, incident


def test_a_rollback_that_found_the_canary_taking_traffic_is_not_told_it_never_took_any():
    """No deploy nor shift recorded (a hand on the load balancer, a run that died before recording
    either), and the rollback read 5 % on the canary before it moved anything: the exposure said
    "The new version never took traffic" above a "Traffic moved back" saying the canary still takes 5 %."""
    rec = record([started(), Transition(at=T0 + 600, kind="rollback-start", actor="erin", comment="aborted by erin: 5xx"),
                  Transition(at=T0 + 610, kind="rollback-stopped", actor="erin", from_weights=w(5), to_weights=w(5),
                             comment="done: nothing")], RolloutPhase.ROLLING_BACK, weights=w(5))
    rec = rec.model_copy(update={"canary_task_definition": None})
    report = " ".join(incident_report(rec).split())
    assert "never took traffic" not in report, report
    assert "but the rollback found it taking **5%** of the traffic (95/5 stable/canary)" in report, report


def approval_question(at: float, before: int) -> Transition:
    return Transition(at=T0 + at, kind="pause", actor="alice", to_stage=1 if before == 25 else 2,
                      comment=f"approval pause: stage passed; approval needed before {before}%; unanswered by "
                              f"{utc(T0 + at + 86400)} (wall clock) the rollout rolls back")


def test_the_approvals_table_says_how_long_each_pause_waited_for_a_person_and_in_all():
    """The table gave when each answer came, not since when it had been asked: a week-long rollout's
    reader could not tell the hours it spent waiting for people from the hours it spent being judged."""
    rec = record([
        started(), shift(60, 5, 0), passed(700, 0), approval_question(700, 25),
        Transition(at=T0 + 700 + 9000, kind="approve", actor="bob", to_stage=1, comment="approve: ok",
                   verdict="approval needed before 25%"),
        shift(9710, 25, 1, 5), passed(10_400, 1), approval_question(10_400, 100),
        Transition(at=T0 + 10_400 + 3600, kind="timeout", actor="timeout", to_stage=2,
                   comment="hold: no answer within 3600 s", verdict="approval needed before 100%"),
        approval_question(14_000, 100),
        Transition(at=T0 + 10_400 + 7200, kind="approve", actor="carol", to_stage=2, comment="approve",
                   verdict="approval needed before 100%"),
        shift(17_610, 100, 2, 25),
    ], RolloutPhase.PROGRESSING)
    approvals = rollout_report(rec).split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    assert "| when | waited | who | answer |" in approvals, approvals
    assert f"| {utc(T0 + 9700)} | 2.5 h | bob | approve | 25% |" in approvals, approvals
    # Asked again after a timeout that held: the answer's wait runs from the first asking.
    assert f"| {utc(T0 + 17_600)} | 2.0 h | carol | approve | 100% |" in approvals, approvals
    assert "**Waited for people's answers:** 4.5 h in all, at 2 pauses" in approvals, approvals


DAY = 86400


def test_a_weekly_rollout_reports_each_phase_and_how_long_it_held_between_them():
    """The stage table said stage 1 "lasted 7.0 days" and "passed" after 10 minutes' judging: a
    reader of a three-week rollout could not tell the days it held for the schedule from the time
    it was judged, nor which stages each weekly phase ran."""
    weekly = RolloutSpec(image=IMAGE)  # the default plan: week 1 at 5 %, week 2 at 25-50 %, week 3 at 75-100 %
    assert [p.name for p in weekly.phases] == ["week 1", "week 2", "week 3"]

    def phase(at: float, comment: str, actor: str = "schedule") -> Transition:
        return Transition(at=T0 + at, kind="phase", actor=actor, comment=comment)

    rec = record([
        started(), phase(0, "starting week 1", "alice"), shift(60, 5, 0), passed(700, 0),
        phase(700, "5%: canary 0.08% vs baseline 0.10%; this phase ends at 5%", "alice"),
        phase(7 * DAY, "starting week 2"), shift(7 * DAY + 10, 25, 1, 5), passed(7 * DAY + 700, 1),
        shift(7 * DAY + 710, 50, 2, 25), passed(7 * DAY + 1400, 2),
        phase(7 * DAY + 1400, "50%: canary 0.08% vs baseline 0.10%; this phase ends at 50%"),
        phase(15 * DAY, "starting week 3"), shift(15 * DAY + 10, 75, 3, 50),
    ], RolloutPhase.PROGRESSING, stages=(5, 25, 50, 75, 100)).model_copy(update={"spec_json": weekly.model_dump_json()})
    text = rollout_report(rec)
    assert "## Weekly phases" in text, text
    section = text.split("## Weekly phases", 1)[1].split("\n## ", 1)[0]
    rows = [x for x in section.splitlines() if x.startswith("| ")]
    assert rows[0] == "| phase | stages | started | passed | next phase started | held between phases |", rows
    assert rows[1] == (f"| week 1 | 5% | {utc(T0)} | {utc(T0 + 700)} | {utc(T0 + 7 * DAY)} | 7.0 days |"), rows
    assert rows[2] == (f"| week 2 | 25%, 50% | {utc(T0 + 7 * DAY)} | {utc(T0 + 7 * DAY + 1400)} | "
                       f"{utc(T0 + 15 * DAY)} | 8.0 days |"), rows
    assert rows[3] == f"| week 3 | 75%, 100% | {utc(T0 + 15 * DAY)} | (under way) | - | - |", rows
    assert "**Held between weekly phases:** 15.0 days in all" in section, section
    # An unphased rollout (every stage in one run) has no such section.
    assert "## Weekly phases" not in rollout_report(promoted_record())


def test_the_incident_report_says_how_long_the_traffic_took_to_come_back_once_the_rollback_began():
    """The trigger's time and the read-back's were two lines apart, each a timestamp: on-call had
    to subtract them to say how long users stayed on the failing version once it was caught."""
    text = incident_report(guardrail_rollback())
    # An end recorded before rollbacks kept their read-back's time: stamped after the canary, the
    # flags and the page, so a bound.
    assert (f"- **Traffic back on stable:** at most 40 s after the rollback began ({utc(T0 + 660)} to "
            f"{utc(T0 + 700)}, when its end was recorded, after the load balancer read back 100/0 and the steps after "
            "it: the read-back's own time is not recorded)") in text, text
    # Not back, as recorded: nothing to measure, and the report says so elsewhere.
    assert "**Traffic back on stable:**" not in incident_report(guardrail_rollback(finished=False))


def test_the_time_to_restore_counts_to_the_read_back_the_rollbacks_end_keeps_not_to_its_stamp():
    """The end entry is written after the canary's scale-down, the flags and the page (SNS retries may
    hold it a minute or more): counted to its stamp, the time to restore was that much too long. The
    end keeps when the read-back verified the traffic on stable (``verified_wall``), counted to instead."""
    rec = guardrail_rollback()
    start, end = rec.history[-2:]
    walls = [*rec.history[:-2], start.model_copy(update={"wall": T0 + 660}),
             end.model_copy(update={"wall": T0 + 790, "verified_wall": T0 + 685})]
    (line,) = [x for x in incident_report(rec.model_copy(update={"history": walls})).splitlines()
               if "**Traffic back on stable:**" in x]
    assert line == (f"- **Traffic back on stable:** 25 s after the rollback began ({utc(T0 + 660)} to {utc(T0 + 685)}, "
                    "when the load balancer read back 100/0)"), line


def test_the_exposure_and_the_stage_table_count_to_the_read_back_not_to_the_ends_stamp():
    """The end entry is written after the canary's scale-down, the flags and the page (SNS retries
    may hold it a minute or more): "Exposed for" and the rolled-back stage's row counted to its stamp,
    as if users had the new version until then, while the time to restore beside them counted to the
    read-back that put them back on stable (``verified_wall``)."""
    rec = guardrail_rollback()
    start, end = rec.history[-2:]
    walls = [*rec.history[:-2], start.model_copy(update={"wall": T0 + 660}),
             end.model_copy(update={"at": T0 + 790, "wall": T0 + 790, "verified_wall": T0 + 685})]
    text = incident_report(rec.model_copy(update={"history": walls}))
    (exposed,) = [x for x in text.splitlines() if x.startswith("- **Exposed for:**")]
    assert exposed == "- **Exposed for:** 10.4 min", exposed  # T0 + 60 to T0 + 685, not to T0 + 790
    (row,) = [x for x in text.splitlines() if x.startswith("| 1/3 |")]
    assert f"| {utc(T0 + 60)} | {utc(T0 + 685)} | 10.4 min |" in row, row
    assert "25 s after the rollback began" in text, text


def test_the_incident_timeline_stamps_the_read_back_with_its_own_time_not_the_ends():
    """Beside "Exposed for" counted to the read-back (``verified_wall``), the timeline's line "the
    load balancer read back 100/0" bore the end entry's stamp, written after the canary, the flags and
    the page: two times for one read-back in the same report."""
    rec = guardrail_rollback()
    start, end = rec.history[-2:]
    walls = [*rec.history[:-2], start.model_copy(update={"wall": T0 + 660}),
             end.model_copy(update={"at": T0 + 790, "wall": T0 + 790, "verified_wall": T0 + 685})]
    text = incident_report(rec.model_copy(update={"history": walls}))
    (line,) = [x for x in text.splitlines() if "the load balancer read back **100/0**" in x]
    assert line == (f"- {utc(T0 + 685)}: the load balancer read back **100/0** (stable/canary); recorded by judge "
                    f"at {utc(T0 + 790)}."), line
    # An end that kept no read-back time is stamped as it was.
    assert f"- {utc(T0 + 700)}: the load balancer read back **100/0** (stable/canary); recorded by judge." in (
        incident_report(rec))


def test_a_stage_whose_shift_a_resumed_run_found_says_when_it_may_have_begun():
    """The run that moved the traffic to 5 % died before recording it; the next run found the shift
    on the load balancer and recorded it then. The stage table gave that finding as when the stage
    began and "lasted 30.0 min", while the incident report gave the exposure as 30 to 60 min."""
    rec = _found_shift()
    (row,) = [x for x in rollout_report(rec).split("## Stages", 1)[1].splitlines() if x.startswith("| 1/3 |")]
    assert (f"| 1/3 | 95/5 | between {utc(T0)} and {utc(T0 + 1805)} (found there by a resumed run) | "
            f"{utc(T0 + 3605)} | 30.0 min to 60.1 min |") in row, row


def test_the_stage_table_does_not_repeat_a_stages_reason_in_the_row_after_it():
    """A shift records why it was made, the stage before it's full reason ("25%: canary errors
    0/75,000 ... — pass (...); shifting to 50%"), and a promotion likewise: the table gave each
    reason twice, once as a row's verdict and again as the next row's "how" (or the promotion's),
    doubling every row of a promoted rollout's table."""
    why = ("canary errors 0/75,000 (0.00%) vs baseline 225/225,000 (0.10%): evidence over 10^6 reached 100 that the "
           "canary is below 2x the baseline or 0.10% — pass")
    rec = record([
        started(), shift(60, 25, 0), passed(700, 0, why),
        Transition(at=T0 + 700, kind="shift", actor="alice", from_weights=w(25), to_weights=w(100), from_stage=0,
                   to_stage=1, comment=f"25%: {why}; shifting to 100%"),
        passed(1400, 1, why),
        Transition(at=T0 + 1400, kind="promote", actor="alice", to_weights=w(100),
                   comment=f"100%: {why}; all 2 stages passed"),
    ], RolloutPhase.PROMOTED, stages=(25, 100))
    table = rollout_report(rec).split("## Stages", 1)[1].split("\n## ", 1)[0]
    assert table.count(why) == 2, table  # once per stage, as its verdict
    assert "| shift by alice: 25%: the reason in the row above; shifting to 100% |" in table, table
    assert "then promoted: 100%: the reason given in this row; all 2 stages passed |" in table, table
    # The timeline keeps each entry as it was recorded.
    assert f"25%: {why}; shifting to 100%" in rollout_report(rec).split("## Every recorded transition", 1)[1]


def test_a_promotion_after_an_accepted_stage_says_so_in_its_outcome():
    """The outcome read "promoted", as of a rollout the judge passed at every stage, while a person
    had taken 5 % on their word: only the stage table's row and the promotion's reason said so."""
    rec = record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 700, kind="approve", actor="dana", to_stage=0, comment="approve: quiet night",
                   verdict="5%: stage over and no period had a canary request count: a person must decide"),
        shift(710, 25, 1, 5), passed(1400, 1), shift(1410, 100, 2, 25), passed(2100, 2),
        Transition(at=T0 + 2100, kind="promote", actor="alice", to_weights=w(100), comment="all 3 stages done"),
        Transition(at=T0 + 5800, kind="watched", actor="monitor", comment="window passed"),
        Transition(at=T0 + 9000, kind="finalized", actor="carol", from_weights=w(100), to_weights=w(0)),
    ], RolloutPhase.PROMOTED)
    (outcome,) = [x for x in rollout_report(rec).splitlines() if x.startswith("- **Outcome:**")]
    assert outcome.startswith("- **Outcome:** promoted, 1 stage accepted on a person's word (the judge unable to "
                              "pass it): 5% by dana; monitoring window closed"), outcome
    (plain,) = [x for x in rollout_report(promoted_record()).splitlines() if x.startswith("- **Outcome:**")]
    assert plain.startswith("- **Outcome:** promoted; monitoring window closed"), plain


def test_the_timelines_weights_say_which_side_is_which():
    """The timeline's weights column read "100/0 → 95/5" under a bare "weights": the stage table
    heads the same figures "weights s/c", and nothing said here which number was the canary's."""
    timeline = rollout_report(promoted_record()).split("## Every recorded transition", 1)[1]
    assert "| when | what | who | weights s/c | detail |" in timeline, timeline


def test_a_weekly_rollout_resumed_unphased_keeps_its_phases_section_and_one_run_unphased_has_none():
    weekly = RolloutSpec(image=IMAGE)
    passed_week_1 = [started(), Transition(at=T0, kind="phase", actor="alice", comment="starting week 1"),
                     shift(60, 5, 0), passed(700, 0),
                     Transition(at=T0 + 700, kind="phase", actor="alice", comment="5%: fine; this phase ends at 5%")]
    resumed = record(passed_week_1, RolloutPhase.PAUSED, weights=w(5)).model_copy(
        update={"spec_json": weekly.model_dump_json(), "phased": False})
    assert "## Weekly phases" in rollout_report(resumed)
    unphased = record([started(), Transition(at=T0, kind="phase", actor="alice", comment=(
        "starting week 1 and going on through every stage (unphased: the run does not stop at the end of a weekly "
        "phase)")), shift(60, 5, 0)], RolloutPhase.PROGRESSING).model_copy(
        update={"spec_json": weekly.model_dump_json(), "phased": False})
    assert "## Weekly phases" not in rollout_report(unphased)


def _abort_then_sped_up_finish(*, walls: bool) -> RolloutRecord:
    """`rollway abort` began the rollback on real time (no run owned the rollout); a run on
    `rollway up`'s 60x clock finished it 30 wall seconds later, its entries hours ahead."""
    real, ahead = T0 + 700, T0 + 700 + 4 * 3600  # the finishing run's clock, 4 h ahead of the wall
    start_wall = {"wall": real} if walls else {}
    end_wall = {"wall": real + 30} if walls else {}
    return record([
        started(), shift(60, 5, 0),
        Transition(at=real, kind="rollback-start", actor="carol", comment="aborted by carol: 500s", **start_wall),
        Transition(at=ahead + 1500, kind="notifying", actor="rollback", wall=real + 25),
        Transition(at=ahead + 1800, kind="rollback", actor="rollback", from_weights=w(5), to_weights=w(0),
                   comment="aborted by carol: 500s", **end_wall),
    ], RolloutPhase.ROLLED_BACK, weights=w(0))


def test_the_time_to_restore_is_not_inflated_by_a_rollback_finished_on_a_faster_clock():
    """A rollback begun on real time and finished by a run on the 60x clock read "Traffic back on
    stable: 4.5 h after the rollback began" of 30 wall seconds: the clock check caught only a time
    stamped behind the start, never one ahead of it."""
    # The entries keep both times: the figure is the wall clock's, labelled so.
    line = next(x for x in incident_report(_abort_then_sped_up_finish(walls=True)).splitlines()
                if "Traffic back on stable" in x)
    assert line.startswith("- **Traffic back on stable:** at most 30 s after the rollback began"), line
    assert f"{utc(T0 + 700)} to {utc(T0 + 730)} on the wall clock" in line, line
    # Entries that keep only their own time (recorded before both were kept): the notice's entry says
    # the finishing run was hours ahead of the wall, so no span is read from two clocks.
    assert "Traffic back on stable" not in incident_report(_abort_then_sped_up_finish(walls=False))


def test_a_rollout_on_a_faster_clock_says_which_clock_its_stage_and_approval_times_are_on():
    """Under `rollway up`'s 60x clock the Approvals table's "since" of the waiting pause was on the
    wall clock, as its deadline, while the "when" and "waited" beside it and the stage times were on
    the rollout clock: an answer given after a wall minute "waited 1.0 h" above a pause "since" a
    time five hours before the rows around it, nothing saying which was which."""
    from datetime import datetime, timezone

    from flows.approvals import pause_question
    from rollway.decide import Pause

    ahead = 5 * 3600  # the rollout clock's lead over the wall clock

    def asked(at: float, stage: int, weight: int) -> Transition:
        question = pause_question(Pause(stage_index=stage, cause="approval", reason=f"approval needed before {weight}%"),
                                  Approvals(), datetime.fromtimestamp(T0 + at - ahead, tz=timezone.utc))
        return Transition(at=T0 + at, kind="pause", actor="alice", to_stage=stage, comment=question)

    sped = record([started(), shift(60, 5, 0), passed(700, 0), asked(ahead + 700, 1, 25),
                   Transition(at=T0 + ahead + 700 + 3600, kind="approve", actor="bob", to_stage=1, comment="approve",
                              verdict="approval needed before 25%"),
                   shift(ahead + 4310, 25, 1, 5), passed(ahead + 5000, 1), asked(ahead + 5000, 2, 100)],
                  RolloutPhase.PROGRESSING)
    text = rollout_report(sped)
    approvals = text.split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    assert "| when (rollout clock) | waited (rollout clock) | who | answer |" in approvals, approvals
    assert "| since 2027-01-15 " in approvals and "(wall clock) | - | - | **waiting for an answer**" in approvals
    assert "**Waited for people's answers:** 60.0 min in all on the rollout clock" in approvals, approvals
    stages = text.split("## Stages", 1)[1].split("## Approvals", 1)[0]
    assert "| stage | weights s/c | from (rollout clock) | until (rollout clock) | lasted (rollout clock) |" in stages
    # At real time the clocks agree, and nothing is labelled.
    plain = rollout_report(promoted_record())
    assert "| when | waited | who | answer |" in plain and "rollout clock" not in plain, plain


def test_an_exposure_on_a_faster_clock_is_said_to_be_the_rollout_clocks():
    """Under the 60x clock the exposure, a span of the rollout clock's entries, read "Exposed for:
    10.7 min" a few lines above "Traffic back on stable: 40 s" in wall time: two clocks as one."""
    ahead = 4 * 3600
    rec = guardrail_rollback()
    notice = Transition(at=T0 + 690, kind="notifying", actor="judge", wall=T0 + 690 - ahead)
    rec = rec.model_copy(update={"history": (*rec.history[:-1], notice, rec.history[-1])})
    text = incident_report(rec)
    assert "**Exposed for:** 10.7 min on the rollout clock (it ran ahead of the wall clock)" in text, text
    assert "**Exposed for:** 10.7 min\n" in incident_report(guardrail_rollback())


def test_the_timeline_of_a_rollout_on_a_faster_clock_says_its_times_are_the_rollout_clocks():
    """The timeline's times are the entries' own, on the rollout clock, while the notice's entry and
    the rollback's keep wall times the report gives elsewhere: unlabelled, hours apart under 60x."""
    ahead = 4 * 3600
    rec = guardrail_rollback()
    notice = Transition(at=T0 + 690, kind="notifying", actor="judge", wall=T0 + 690 - ahead)
    rec = rec.model_copy(update={"history": (*rec.history[:-1], notice, rec.history[-1])})
    timeline = rollout_report(rec).split("## Every recorded transition", 1)[1]
    assert "| when (rollout clock) | what | who | weights s/c | detail |" in timeline, timeline
    assert "| when | what | who |" in rollout_report(guardrail_rollback())


def _sped_guardrail_rollback(*, start_wall: float | None = None, end_wall: float | None = None) -> RolloutRecord:
    """A guardrail rollback of a rollout on `rollway up`'s 60x clock anchored at T0: rollout-clock
    time T0 + 60 x is wall time T0 + x. The canary took traffic from wall T0 + 60 (rollout T0 +
    3600); the rollback began at wall T0 + 600 and read the traffic back at wall T0 + 610."""
    reason = "5%: canary error rate 4.80% (48/1000) is over the 1% guardrail"
    return record([
        started(), shift(3600, 5, 0),
        Transition(at=T0 + 36_000, kind="rollback-start", actor="judge", comment=reason, wall=start_wall),
        Transition(at=T0 + 36_300, kind="notifying", actor="judge", wall=T0 + 605),
        Transition(at=T0 + 36_600, kind="rollback", actor="judge", to_weights=w(0), comment=reason, wall=end_wall),
    ], RolloutPhase.ROLLED_BACK, weights=w(0))


def test_the_next_steps_log_window_is_given_in_wall_time_for_cloudwatch_logs_insights():
    """The window to read the canary's logs in was the rollout clock's: under `rollway up`'s 60x it
    began ten wall hours after the canary's first request, and CloudWatch Logs Insights, which reads
    wall time, showed nothing of it."""
    from rollway.clock import ClockSettings

    rec = _sped_guardrail_rollback(end_wall=T0 + 610)
    (logs,) = [x for x in incident_report(rec, clock=ClockSettings(speed=60, anchor=T0)).splitlines()
               if "Read the canary's logs and metrics" in x]
    assert f"from {utc(T0 + 60)} to {utc(T0 + 610)} (wall clock, the times CloudWatch Logs Insights reads" in logs, logs
    # The clock not known (its runs gone from the Prefect API): the window is labelled, with how to convert it.
    (logs,) = [x for x in incident_report(rec).splitlines() if "Read the canary's logs and metrics" in x]
    assert f"from {utc(T0 + 3600)} to {utc(T0 + 36_600)} on the rollout clock" in logs, logs
    assert "CloudWatch Logs Insights reads wall time" in logs and "anchor + (time - anchor) / speed" in logs, logs
    # At real time the rollout clock is the wall's: one clock, nothing to label (as before clocks were).
    (logs,) = [x for x in incident_report(guardrail_rollback()).splitlines() if "Read the canary's logs" in x]
    assert f"from {utc(T0 + 60)} to {utc(T0 + 700)}: confirm what failed" in logs, logs
    assert "clock" not in logs, logs


def test_the_rollbacks_intent_and_read_back_times_say_which_clock_they_are_on():
    """Under a faster clock the intent's and the read-back's times were bare, beside a time to
    restore labelled "on the wall clock" and tables labelled "(rollout clock)": a reader could not
    tell which clock the rollback's own lines were on."""
    text = incident_report(_sped_guardrail_rollback(start_wall=T0 + 600, end_wall=T0 + 610))
    assert (f"- {utc(T0 + 36_000)} (rollout clock; {utc(T0 + 600)} on the wall clock): rollback intent recorded by "
            "judge") in text, text
    assert (f"- {utc(T0 + 36_600)} (rollout clock; {utc(T0 + 610)} on the wall clock): the load balancer read back "
            "**100/0**") in text, text
    # `rollway abort` on real time: its intent is stamped on the wall clock, and says so.
    text = incident_report(_abort_then_sped_up_finish(walls=True))
    assert f"- {utc(T0 + 700)} (wall clock): rollback intent recorded by carol" in text, text
    # At real time nothing is labelled, as in the tables.
    assert f"- {utc(T0 + 660)}: rollback intent recorded by judge" in incident_report(guardrail_rollback())


def _found_shift(*extra: Transition) -> RolloutRecord:
    """The run that moved the traffic to 5 % died before recording it (its last entry the start, at
    T0); the next run found the shift on the load balancer at T0 + 1805; carol rolled back at T0 + 3605."""
    from rollway.ledger import RECONCILE, TAKEOVER

    return record([started(),
                   Transition(at=T0 + 1800, kind=TAKEOVER, actor="run-2", comment="took the rollout over from run-1"),
                   Transition(at=T0 + 1805, kind="shift", actor=RECONCILE, from_weights=w(0), to_weights=w(5),
                              to_stage=0, comment="shift found on the load balancer but not in the ledger"),
                   Transition(at=T0 + 3605, kind="rollback-start", actor="carol", comment="users report 500s"),
                   *extra,
                   Transition(at=T0 + 3605, kind="rollback", actor="carol", from_weights=w(5), to_weights=w(0),
                              comment="users report 500s")], RolloutPhase.ROLLED_BACK, weights=w(0))


def test_the_exposures_upper_bound_says_what_it_counts_from_and_on_which_clock():
    """"at least 30.0 min on the rollout clock (...) and at most 60.1 min": the upper bound said
    neither from when it counted nor on which clock it was."""
    (exposed,) = [x for x in incident_report(_found_shift()).splitlines() if x.startswith("- **Exposed for:**")]
    assert (f"at least 30.0 min (from {utc(T0 + 1805)}, when a resumed run found the shift) and at most 60.1 min "
            f"(from {utc(T0)}, the dead run's last entry), to the traffic's return") in exposed, exposed
    sped = _found_shift(Transition(at=T0 + 3605, kind="notifying", actor="carol", wall=T0 + 100))
    (exposed,) = [x for x in incident_report(sped).splitlines() if x.startswith("- **Exposed for:**")]
    assert "to the traffic's return, both on the rollout clock (it ran ahead of the wall clock)" in exposed, exposed


def test_a_total_leaves_out_spans_on_two_clocks_and_says_so():
    """A span between entries on two clocks shows "two clocks" in its row, and the total under the
    table left it out without a word: "Held between weekly phases: 7.0 days in all" of a rollout
    that held twice."""
    weekly = RolloutSpec(image=IMAGE)

    def phase(at: float, comment: str) -> Transition:
        return Transition(at=T0 + at, kind="phase", actor="schedule", comment=comment)

    rec = record([
        started(), phase(0, "starting week 1"), shift(60, 5, 0), passed(700, 0),
        phase(700, "5%: canary 0.08% vs baseline 0.10%; this phase ends at 5%"),
        phase(7 * DAY, "starting week 2"), shift(7 * DAY + 10, 25, 1, 5), passed(7 * DAY + 700, 1),
        shift(7 * DAY + 710, 50, 2, 25), passed(7 * DAY + 1400, 2),
        phase(7 * DAY + 1400, "50%: canary 0.08% vs baseline 0.10%; this phase ends at 50%"),
        phase(3 * DAY, "starting week 3"),  # an advance_phase run on real time, after 60x
    ], RolloutPhase.PROGRESSING, stages=(5, 25, 50, 75, 100)).model_copy(update={"spec_json": weekly.model_dump_json()})
    section = rollout_report(rec).split("## Weekly phases", 1)[1].split("\n## ", 1)[0]
    assert "| two clocks |" in section, section
    assert ("**Held between weekly phases:** 7.0 days in all (from a phase's last stage passing to the next phase's "
            "start: the schedule's wait, no stage being judged); 1 span left out, its two ends stamped on two "
            "clocks") in section, section
    # The approvals' total alike: an answer stamped on real time after a pause asked on the 60x clock.
    rec = record([started(), shift(60, 5, 0), passed(700, 0), approval_question(700, 25),
                  Transition(at=T0 + 4300, kind="approve", actor="bob", to_stage=1, comment="approve",
                             verdict="approval needed before 25%"),
                  shift(4310, 25, 1, 5), passed(5000, 1), approval_question(5000, 100),
                  Transition(at=T0 + 100, kind="approve", actor="carol", to_stage=2, comment="approve",
                             verdict="approval needed before 100%")], RolloutPhase.PROGRESSING)
    approvals = rollout_report(rec).split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    assert "| two clocks |" in approvals, approvals
    assert ("**Waited for people's answers:** 60.0 min in all, at 1 pause (from each pause's first asking to its "
            "answer, or to what ended it unanswered); 1 wait left out, its two ends stamped on two clocks") in approvals


def test_a_time_to_restore_between_hosts_whose_clocks_disagree_says_so_never_0_s():
    """The rollback began on one host and another read the traffic back, its clock 20 s behind:
    "Traffic back on stable: 0 s after the rollback began" of a stop stamped before its start."""
    def restored(**walls: float) -> RolloutRecord:
        reason = "aborted by carol: 500s"
        return record([started(), shift(60, 5, 0),
                       Transition(at=T0 + 700, kind="rollback-start", actor="carol", comment=reason,
                                  wall=walls.get("start")),
                       Transition(at=T0 + 680, kind="rollback", actor="rollback", from_weights=w(5), to_weights=w(0),
                                  comment=reason, wall=walls.get("end"))], RolloutPhase.ROLLED_BACK, weights=w(0))

    for rec in (restored(), restored(start=T0 + 700, end=T0 + 680)):
        (line,) = [x for x in incident_report(rec).splitlines() if "Traffic back on stable" in x]
        assert "0 s after" not in line, line
        assert ("not measurable: the hosts' clocks disagree by at least 20 s (the load balancer's read-back, "
                f"{utc(T0 + 680)}, is stamped 20 s before the rollback's start, {utc(T0 + 700)})") in line, line


def test_when_it_was_rolled_back_says_which_clock_on_a_faster_clock():
    """The incident report's first line, "was rolled back at 18:10", and the rollout report's
    outcome and "Rolled back because" gave the rollout clock's time bare, ten hours after the wall
    time people were paged at."""
    rec = _sped_guardrail_rollback(start_wall=T0 + 600, end_wall=T0 + 610)
    on = f"(rollout clock; {utc(T0 + 610)} on the wall clock)"
    assert f"` was rolled back at {utc(T0 + 36_600)} {on}." in incident_report(rec)
    text = rollout_report(rec)
    assert f"**Outcome:** rolled back at {utc(T0 + 36_600)} {on}" in text, text
    assert f"(by judge, {utc(T0 + 36_000)} (rollout clock; {utc(T0 + 600)} on the wall clock))" in text, text
    # At real time, as before.
    assert f"**Outcome:** rolled back at {utc(T0 + 700)}\n" in rollout_report(guardrail_rollback())


def test_a_span_stamped_backwards_by_hosts_whose_clocks_disagree_is_never_0_s():
    """A rollback read back by a host whose clock was 20 s behind the one that shifted the traffic,
    10 s earlier: the stage "lasted 0 s" and the canary was "Exposed for: 0 s", where it took
    traffic for some seconds the ledger cannot measure."""
    reason = "aborted by carol: 500s"
    rec = record([started(), shift(60, 5, 0),
                  Transition(at=T0 + 50, kind="rollback-start", actor="carol", comment=reason),
                  Transition(at=T0 + 50, kind="rollback", actor="carol", from_weights=w(5), to_weights=w(0),
                             comment=reason)], RolloutPhase.ROLLED_BACK, weights=w(0))
    (exposed,) = [x for x in incident_report(rec).splitlines() if x.startswith("- **Exposed for:**")]
    assert exposed == ("- **Exposed for:** not measurable: the hosts' clocks disagree by at least 10 s (the traffic's "
                       f"return, {utc(T0 + 50)}, is stamped 10 s before the first shift, {utc(T0 + 60)})"), exposed
    (row,) = [x for x in rollout_report(rec).splitlines() if x.startswith("| 1/3 | 95/5 |")]
    assert "| 0 s |" not in row and "| clocks disagree by 10 s |" in row, row
    # An answer stamped by a host behind the one that asked: its wait alike.
    answered = record([started(), shift(60, 5, 0), passed(700, 0), approval_question(700, 25),
                       Transition(at=T0 + 690, kind="approve", actor="bob", to_stage=1, comment="approve",
                                  verdict="approval needed before 25%")], RolloutPhase.PROGRESSING)
    assert f"| {utc(T0 + 690)} | clocks disagree by 10 s | bob | approve |" in rollout_report(answered)


def test_when_people_were_paged_and_when_a_rollback_stopped_say_which_clock_on_a_faster_clock():
    """Under a faster clock "People were paged ... by 08:02:40" and "stopped at 08:02:40" gave the
    rollout clock's time bare, hours from the wall time the page reached people at."""
    rec = stopped_after_paging("sns-9")
    history = list(rec.history)
    history[-1] = history[-1].model_copy(update={"wall": T0 + 160 - 3 * 3600})
    history[-2] = history[-2].model_copy(update={"wall": T0 + 100 - 3 * 3600})  # its start
    text = incident_report(rec.model_copy(update={"history": tuple(history)}))
    on = f"{utc(T0 + 160)} (rollout clock; {utc(T0 + 160 - 3 * 3600)} on the wall clock)"
    assert f"The rollback by judge stopped at {on}, before it finished" in text, text
    assert f"People were paged on the alert topic by {on} by judge" in text, text


def test_the_log_window_of_a_rollback_not_finished_runs_on_past_its_last_record():
    """A rollback under way gave the window to read the logs in as ending at the ledger's last
    record, the rollback's start: the canary may still take traffic after it, and a responder
    reading to that time missed every error since."""
    (logs,) = [x for x in incident_report(guardrail_rollback(finished=False)).splitlines()
               if "Read the canary's logs" in x]
    assert (f"from {utc(T0 + 60)} to {utc(T0 + 660)} and on: "
            "the traffic's return to stable is not recorded, and the canary may still take traffic") in logs, logs


def test_the_first_traffic_to_the_new_version_says_which_clock_on_a_faster_clock():
    """Under a faster clock "First traffic to the new version: 09:00" gave the rollout clock's time
    bare: the canary's first request came at 08:01 on the wall clock its logs are stamped with."""
    from rollway.clock import ClockSettings

    rec = _sped_guardrail_rollback(end_wall=T0 + 610)
    text = incident_report(rec, clock=ClockSettings(speed=60, anchor=T0))
    assert (f"**First traffic to the new version:** {utc(T0 + 3600)} (5%; on the rollout clock, {utc(T0 + 60)} on "
            "the wall clock)\n") in text, text
    assert f"**First traffic to the new version:** {utc(T0 + 3600)} (5%; on the rollout clock)\n" in incident_report(rec)
    assert f"**First traffic to the new version:** {utc(T0 + 60)} (5%)\n" in incident_report(guardrail_rollback())


def test_the_weekly_phases_table_says_its_times_are_the_rollout_clocks_on_a_faster_clock():
    """The stage, approval and timeline tables label their times "(rollout clock)" under a faster
    clock; the weekly phases' table beside them did not, its weeks passing in wall hours."""
    weekly = RolloutSpec(image=IMAGE)

    def phase(at: float, comment: str) -> Transition:
        return Transition(at=T0 + at, kind="phase", actor="schedule", comment=comment)

    history = [started(), phase(0, "starting week 1"), shift(60, 5, 0), passed(700, 0),
               phase(700, "5%: canary 0.08% vs baseline 0.10%; this phase ends at 5%"),
               phase(7 * DAY, "starting week 2"), shift(7 * DAY + 10, 25, 1, 5)]
    rec = record(history, RolloutPhase.PROGRESSING, stages=(5, 25, 50, 75, 100)).model_copy(
        update={"spec_json": weekly.model_dump_json()})
    header = ("| phase | stages | started (rollout clock) | passed (rollout clock) | next phase started (rollout clock) "
              "| held between phases (rollout clock) |")
    assert header in rollout_report(rec, now=T0), rollout_report(rec, now=T0)
    assert "**Held between weekly phases:** 7.0 days in all on the rollout clock (" in rollout_report(rec, now=T0)
    assert "| phase | stages | started | passed | next phase started | held between phases |" in rollout_report(
        rec, now=T0 + 8 * DAY)


def test_a_clock_the_prefect_api_cannot_say_is_warned_of_and_the_report_still_written(monkeypatch, caplog):
    """The report reads the clock of the rollout's runs for its wall times alone: a Prefect API out
    of reach is said, and the window stays the rollout clock's, labelled; a rollout on real time
    never asks."""
    import httpx

    import rollway.cli.ops as ops
    from flows.reports import report_clock

    def out_of_reach(record: RolloutRecord):
        raise httpx.ConnectError("connection refused")

    monkeypatch.setattr(ops, "recorded_clock", out_of_reach)
    rec = _sped_guardrail_rollback(end_wall=T0 + 610)
    assert report_clock(rec, now=T0 + 900) is None
    assert "could not read from the Prefect API which clock rollout" in caplog.text, caplog.text
    monkeypatch.setattr(ops, "recorded_clock", lambda record: pytest.fail("a rollout on real time asked for its clock"))
    assert report_clock(guardrail_rollback(), now=T0 + 900) is None


def test_a_prefect_api_that_accepts_and_never_answers_holds_the_report_no_longer_than_its_bound(monkeypatch, caplog):
    """`rollway report` of a rolled-back rollout on a faster clock reads which clock its runs ran on
    from the Prefect API: one that took the connection and never answered held the incident report
    for minutes (the client's minute per request, retried), silent. The read is given up on at its
    bound, said, and the report's window stays the rollout clock's."""
    import socket

    from prefect.settings import PREFECT_API_URL, temporary_settings

    import flows.reports as reports_flow
    from rollway.deadline import Unanswered, within

    monkeypatch.setattr(reports_flow, "CLOCK_READ_SECONDS", 1.0, raising=False)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(16)  # connections complete in the backlog; nothing ever reads or answers them
    rec = _sped_guardrail_rollback(end_wall=T0 + 610)
    try:
        with temporary_settings({PREFECT_API_URL: f"http://127.0.0.1:{silent.getsockname()[1]}/api"}):
            try:
                clock = within(20.0, lambda: reports_flow.report_clock(rec, now=T0 + 900))
            except Unanswered:
                pytest.fail("the report waited on the Prefect API past its bound")
    finally:
        silent.close()
    assert clock is None
    assert "could not read from the Prefect API which clock rollout" in caplog.text, caplog.text
    assert "did not answer within 1 s" in caplog.text, caplog.text


def test_the_header_lines_of_a_rollout_on_a_faster_clock_say_which_clock_their_times_are_on():
    """Under a faster clock the tables, the outcome's rollback and the log window said which clock
    their times were on, but the "Started / last recorded" line, the flags' lines and the flow runs'
    did not: a flag "disabled by the rollback" at one time beside "rolled back at" the same instant
    labelled with two clocks, and a reader could not tell which of them the bare one was on."""
    rec = _sped_guardrail_rollback(start_wall=T0 + 600, end_wall=T0 + 610)
    rec = rec.model_copy(update={
        "spec_json": spec(5, 25, 100, flags=("sqs-sessions",)),
        "history": (rec.history[0].model_copy(update={"run": "brave-fox (0f1e2d3c)"}), *rec.history[1:])})
    text = rollout_report(rec)
    assert (f"- **Started:** {utc(T0)} (rollout clock); **last recorded:** {utc(T0 + 36_600)} (rollout clock; "
            f"{utc(T0 + 610)} on the wall clock)") in text, text
    assert (f"`sqs-sessions` disabled by the rollback at {utc(T0 + 36_600)} (rollout clock; {utc(T0 + 610)} on the "
            "wall clock)") in text, text
    assert f"`brave-fox (0f1e2d3c)` (started it, {utc(T0)} (rollout clock))" in text, text
    under_way = _sped_guardrail_rollback(start_wall=T0 + 600).model_copy(update={
        "spec_json": spec(5, 25, 100, flags=("sqs-sessions",)), "phase": RolloutPhase.PROGRESSING})
    under_way = under_way.model_copy(update={"history": (*under_way.history[:2], flag_move(
        3600, "sqs-sessions: off 0% -> on 5% (v2)"))})
    assert f"`sqs-sessions` on 5% (v2), set by alice at {utc(T0 + 3600)} (rollout clock)" in rollout_report(
        under_way, now=T0), rollout_report(under_way, now=T0)
    # A promotion read while the wall clock is hours behind its entries: the outcome's times too.
    promoted = rollout_report(promoted_record(), now=T0 - 3 * 3600)
    assert f"monitoring window closed (watched, {utc(T0 + 5800)} (rollout clock))" in promoted, promoted
    assert f"finalized by carol at {utc(T0 + 9000)} (rollout clock)" in promoted, promoted
    # At real time nothing is labelled.
    plain = rollout_report(guardrail_rollback(flags=("sqs-sessions",)))
    assert f"- **Started:** {utc(T0)}; **last recorded:** {utc(T0 + 700)}\n" in plain, plain
    assert f"`sqs-sessions` disabled by the rollback at {utc(T0 + 700)}\n" in plain, plain


def test_each_stage_row_says_who_approved_it_when_and_how_long_the_approval_was_waited_for():
    """A rollout promoted after approval pauses, one held and asked again, another timed out and
    asked again: the stage table said "shift by alice" of a stage dana approved, and nothing of the
    half hour users stayed at 5 % waiting for her; the approvals were in a table of their own, under
    the stage they were asked for, not the one they held the traffic at."""
    def asked(at: float, stage: int, before: int) -> Transition:
        return Transition(at=T0 + at, kind="pause", actor="alice", to_stage=stage,
                          comment=f"approval pause: approval needed before {before}%; unanswered by "
                                  f"{utc(T0 + at + 3600)} (wall clock) the rollout rolls back")

    rec = record([
        started(), shift(60, 5, 0), passed(700, 0), asked(700, 1, 25),
        Transition(at=T0 + 1600, kind="hold", actor="erin", to_stage=1, comment="hold: batch job running",
                   verdict="approval needed before 25%"),
        asked(1660, 1, 25),
        Transition(at=T0 + 2560, kind="approve", actor="dana", to_stage=1, comment="approve: ok",
                   verdict="approval needed before 25%"),
        shift(2560, 25, 1, 5), passed(3200, 1), shift(3210, 50, 2, 25), passed(3800, 2), asked(3800, 3, 100),
        Transition(at=T0 + 7400, kind="timeout", actor="timeout", to_stage=3, comment="hold: no answer within 3600 s",
                   verdict="approval needed before 100%"),
        Transition(at=T0 + 8000, kind="approve", actor="frank", to_stage=3, comment="approve: lgtm",
                   verdict="approval needed before 100%"),
        shift(8000, 100, 3, 50), passed(8600, 3),
        Transition(at=T0 + 8600, kind="promote", actor="alice", to_weights=w(100), comment="every stage passed"),
    ], RolloutPhase.PROMOTED, stages=(5, 25, 50, 100))
    table = rollout_report(rec).split("## Stages", 1)[1].split("\n## ", 1)[0]
    assert "| stage | weights s/c | from | until | lasted | how | approval | verdict and reason |" in table, table
    rows = {x.split(" | ", 1)[0]: x for x in table.splitlines() if x.startswith("| ") and "/4 |" in x}
    assert "| shift by alice: stage 1 | - | passed:" in rows["| 1/4"], rows
    assert (f"| shift by alice: stage 2 | by dana at {utc(T0 + 2560)}, after 31.0 min at 5% (asked from "
            f"{utc(T0 + 700)}; held by erin at {utc(T0 + 1600)}) | passed:") in rows["| 2/4"], rows
    assert "| shift by alice: stage 3 | - | passed:" in rows["| 3/4"], rows
    assert (f"| by frank at {utc(T0 + 8000)}, after 70.0 min at 50% (asked from {utc(T0 + 3800)}; timed out at "
            f"{utc(T0 + 7400)} and asked again) |") in rows["| 4/4"], rows
    # An approval that accepted a stage the judge could not pass is that stage's verdict, no gate into the next.
    accepted = record([started(), shift(60, 5, 0),
                       Transition(at=T0 + 700, kind="approve", actor="dana", to_stage=0, comment="approve: quiet",
                                  verdict="5%: no period had a canary request count: a person must decide"),
                       shift(710, 25, 1, 5)], RolloutPhase.PROGRESSING)
    (row,) = [x for x in rollout_report(accepted).splitlines() if x.startswith("| 2/3 |")]
    assert "| shift by alice: stage 2 | - |" in row, row


def test_a_stage_approved_after_its_paused_run_died_says_the_question_was_asked_again_by_the_run_that_took_over():
    """The run waiting at the approval died; the next took the rollout over and asked again: the
    stage's approval read as a half hour of waiting for a person, nothing saying a run had died."""
    from rollway.ledger import TAKEOVER

    question = "approval pause: approval needed before 25%; unanswered by 2027-01-15 10:00:00 UTC (wall clock)"
    rec = record([
        started(), shift(60, 5, 0), passed(600, 0),
        Transition(at=T0 + 600, kind="pause", actor="alice", to_stage=1, comment=question),
        Transition(at=T0 + 1800, kind=TAKEOVER, actor="run-2", comment="took the rollout over from run-1"),
        Transition(at=T0 + 1800, kind="pause", actor="alice", to_stage=1, comment=question),
        Transition(at=T0 + 2400, kind="approve", actor="dana", to_stage=1, comment="approve: ok",
                   verdict="approval needed before 25%"),
        shift(2400, 25, 1, 5),
    ], RolloutPhase.PROGRESSING)
    (row,) = [x for x in rollout_report(rec).splitlines() if x.startswith("| 2/3 |")]
    assert (f"| by dana at {utc(T0 + 2400)}, after 30.0 min at 5% (asked from {utc(T0 + 600)}; run-2 took the rollout "
            f"over at {utc(T0 + 1800)} from a run that had stopped, and asked again) |") in row, row


def test_the_incident_report_says_where_its_evidence_is_kept():
    """A postmortem cites its evidence: the report named the flow runs, but not the ledger item it was
    read from nor the keys of the stage tables (the canary's and the baseline's counts per stage),
    which the report itself says it does not hold."""
    from rollway.targets import Targets

    rec = record([started(), shift(60, 5, 0), passed(700, 0), shift(710, 25, 1, 5),
                  Transition(at=T0 + 900, kind="rollback-start", actor="judge", comment="25%: canary errors 9/600"),
                  Transition(at=T0 + 910, kind="rollback", actor="judge", from_weights=w(25), to_weights=w(0),
                             comment="25%: canary errors 9/600")], RolloutPhase.ROLLED_BACK)
    text = incident_report(rec, targets=Targets())
    evidence = text.split("## Evidence", 1)[1].split("\n## ", 1)[0]
    assert (f"- **Ledger:** the rollout's item in the DynamoDB table `webordinary-rollouts` (region us-west-2), key "
            f"`service` {SERVICE}, `rollout_id` 20270115T080000Z-1a2b3c4d:") in evidence, evidence
    assert "`rollway report --rollout 20270115T080000Z-1a2b3c4d`" in evidence, evidence
    # No flow run is recorded: none is "named above"; the artifacts are found by key and time.
    assert ("- **Prefect artifacts** (Prefect UI, Artifacts, by key; no flow run of the rollout is recorded: take the "
            "versions written between its start and its rollback, a key's newest may be a later rollout's):") in evidence
    named = rec.model_copy(update={"history": (rec.history[0].model_copy(update={"run": "brave-fox (0f1e)"}),
                                               *rec.history[1:])})
    assert ("- **Prefect artifacts** of the flow runs named above (each run's Artifacts tab; a key's newest version "
            "may be a later rollout's):") in incident_report(named)
    assert (f"`{SERVICE}-stage-5`, `{SERVICE}-stage-25`" in evidence and f"`{SERVICE}-summary`" in evidence
            and "-monitoring" not in evidence), evidence
    # Without the targets the table is named by its setting, and the post-promotion monitor's window has its key.
    monitored = incident_report(rec.model_copy(update={"history": (*rec.history[:-2], Transition(
        at=T0 + 900, kind="rollback", actor="monitor", to_weights=w(0), comment="monitoring after promotion: 5xx"))}))
    evidence = monitored.split("## Evidence", 1)[1].split("\n## ", 1)[0]
    assert "the ledger table (`rollouts_table` in the RollwayTargets block)" in evidence, evidence
    assert f"`{SERVICE}-monitoring`" in evidence, evidence
    # The judge rolled back while 5 %'s approval pause waited: the looks of the pause have a table of their own.
    during = record([started(), shift(60, 5, 0), passed(700, 0),
                     Transition(at=T0 + 700, kind="pause", actor="alice", to_stage=1,
                                comment="approval pause: approval needed before 25%"),
                     Transition(at=T0 + 900, kind="rollback-start", actor="judge", comment="5%: canary errors 9/600"),
                     Transition(at=T0 + 910, kind="rollback", actor="judge", from_weights=w(5), to_weights=w(0),
                                comment="5%: canary errors 9/600")], RolloutPhase.ROLLED_BACK)
    evidence = incident_report(during).split("## Evidence", 1)[1].split("\n## ", 1)[0]
    assert f"`{SERVICE}-stage-5`, `{SERVICE}-stage-5-pause` (the looks taken while the approval pause waited)" in evidence


def test_the_traffic_now_line_of_a_rollback_that_stopped_gives_the_weights_it_read_back_not_the_older_ones():
    """The rollback moved the traffic back and stopped on a later step (a flag's write refused): the
    rollout's weights are not rewritten then, and the report's "Traffic now (ledger): 95/5" sat above
    a "Users get" line saying all of it was back on stable, both read from the same item."""
    from rollway.ledger import ROLLBACK_STOPPED, rollback_stopped_comment

    rec = guardrail_rollback(finished=False)
    stopped = Transition(at=T0 + 680, kind=ROLLBACK_STOPPED, actor="operator", from_weights=w(5), to_weights=w(0),
                         comment=rollback_stopped_comment("weights 100/0 verified", "disable every bound flag"))
    rec = rec.model_copy(update={"history": (*rec.history, stopped)})
    assert rec.weights == w(5)
    (now,) = [x for x in rollout_report(rec).splitlines() if x.startswith("- **Traffic now")]
    assert now == (f"- **Traffic now (ledger):** 100/0 stable/canary, as operator's rollback read it back at "
                   f"{utc(T0 + 680)} before it stopped (the rollout's weights, 95/5, are from before the rollback "
                   "moved the traffic)"), now
    # Stopped before the traffic could move: the weights it read back are the rollout's, said once.
    held = rec.model_copy(update={"history": (*rec.history[:-1], stopped.model_copy(update={"to_weights": w(5)}))})
    (now,) = [x for x in rollout_report(held).splitlines() if x.startswith("- **Traffic now")]
    assert now == "- **Traffic now (ledger):** 95/5 stable/canary", now


def test_the_traffic_now_line_keeps_the_weights_an_earlier_stopped_rollback_read_back_when_a_later_one_read_none():
    """The rollback read the traffic back at 100/0 and stopped; run again, it stopped before it could
    read the load balancer (its entry holds no weights): the line went back to the rollout's 95/5,
    older than the 100/0 the ledger recorded after it."""
    from rollway.ledger import ROLLBACK_STOPPED, rollback_stopped_comment

    rec = guardrail_rollback(finished=False)
    read = Transition(at=T0 + 680, kind=ROLLBACK_STOPPED, actor="operator", from_weights=w(5), to_weights=w(0),
                      comment=rollback_stopped_comment("weights 100/0 verified", "disable every bound flag"))
    unread = Transition(at=T0 + 900, kind=ROLLBACK_STOPPED, actor="erin",
                        comment=rollback_stopped_comment("", "move the traffic back; disable every bound flag"))
    rec = rec.model_copy(update={"history": (*rec.history, read, unread)})
    (now,) = [x for x in rollout_report(rec).splitlines() if x.startswith("- **Traffic now")]
    assert now.startswith(f"- **Traffic now (ledger):** 100/0 stable/canary, as operator's rollback read it back at "
                          f"{utc(T0 + 680)} before it stopped"), now


def test_the_exposure_says_how_long_users_were_on_the_new_version_at_each_weight():
    """The exposure gave the total and the highest weight: how long the users at 25 % had the new
    version, against those at 5 %, was for the reader to work out from the stage table's rows."""
    rec = record([started(), shift(60, 5, 0), passed(700, 0), shift(710, 25, 1, 5),
                  Transition(at=T0 + 900, kind="rollback-start", actor="judge", comment="25%: canary errors 9/600"),
                  Transition(at=T0 + 910, kind="rollback", actor="judge", from_weights=w(25), to_weights=w(0),
                             comment="25%: canary errors 9/600")], RolloutPhase.ROLLED_BACK)
    (each,) = [x for x in incident_report(rec).splitlines() if x.startswith("- **At each weight:**")]
    assert each == "- **At each weight:** 5% for 10.8 min, then 25% for 3.3 min, to the traffic's return", each
    # Not yet back on stable: the last weight's span is open.
    under_way = guardrail_rollback(finished=False)
    (each,) = [x for x in incident_report(under_way).splitlines() if x.startswith("- **At each weight:**")]
    assert each == f"- **At each weight:** 5% from {utc(T0 + 60)}, its end not recorded", each


def test_the_exposure_at_each_weight_of_a_rollback_that_stopped_after_the_traffic_was_back_ends_at_its_read_back():
    """The rollback read the traffic back at 100/0 and stopped on a later step: "Exposed for" counts
    to that read-back, and the line below it said the last weight's end was not recorded."""
    from rollway.ledger import ROLLBACK_STOPPED, rollback_stopped_comment

    rec = guardrail_rollback(finished=False)
    stopped = Transition(at=T0 + 680, kind=ROLLBACK_STOPPED, actor="operator", from_weights=w(5), to_weights=w(0),
                         comment=rollback_stopped_comment("weights 100/0 verified", "disable every bound flag"))
    text = incident_report(rec.model_copy(update={"history": (*rec.history, stopped)}))
    (exposed,) = [x for x in text.splitlines() if x.startswith("- **Exposed for:**")]
    assert exposed == "- **Exposed for:** 10.3 min", exposed
    (each,) = [x for x in text.splitlines() if x.startswith("- **At each weight:**")]
    assert each == "- **At each weight:** 5% for 10.3 min, to the traffic's return", each


def test_a_weights_span_on_two_clocks_is_said_not_measurable_in_the_exposure():
    """"25% for two clocks" read as a duration."""
    (each,) = [x for x in incident_report(aborted_on_real_time_under_a_faster_clock()).splitlines()
               if x.startswith("- **At each weight:**")]
    assert each == ("- **At each weight:** 5% for 119.0 min, then 25% (not measurable: its ends are stamped on two "
                    "clocks), to the traffic's return"), each
    skewed = record([started(), shift(60, 5, 0),
                     Transition(at=T0 + 50, kind="rollback-start", actor="carol", comment="aborted by carol: 500s"),
                     Transition(at=T0 + 50, kind="rollback", actor="carol", from_weights=w(5), to_weights=w(0),
                                comment="aborted by carol: 500s")], RolloutPhase.ROLLED_BACK, weights=w(0))
    (each,) = [x for x in incident_report(skewed).splitlines() if x.startswith("- **At each weight:**")]
    assert each == ("- **At each weight:** 5% (not measurable: the hosts' clocks disagree by 10 s), to the traffic's "
                    "return"), each


def test_an_approval_whose_wait_cannot_be_measured_says_so_in_the_stage_row():
    """"after two clocks at 5%" read as a duration."""
    def approved(at: float) -> RolloutRecord:
        return record([started(), shift(60, 5, 0), passed(700, 0), approval_question(700, 25),
                       Transition(at=T0 + at, kind="approve", actor="bob", to_stage=1, comment="approve",
                                  verdict="approval needed before 25%"), shift(710, 25, 1, 5)], RolloutPhase.PROGRESSING)

    (row,) = [x for x in rollout_report(approved(690)).splitlines() if x.startswith("| 2/3 |")]
    assert (f"| by bob at {utc(T0 + 690)}, after a wait not measurable (the hosts' clocks disagree by 10 s) at 5% "
            f"(asked from {utc(T0 + 700)}) |") in row, row
    (row,) = [x for x in rollout_report(approved(100)).splitlines() if x.startswith("| 2/3 |")]
    assert (f"| by bob at {utc(T0 + 100)}, after a wait not measurable (its ends are stamped on two clocks) at 5% "
            f"(asked from {utc(T0 + 700)}) |") in row, row


def test_the_incident_reports_pause_and_takeover_times_say_which_clock_on_a_faster_clock():
    """Under a faster clock the pause a rollback cut short and the runs that took the rollout over
    gave bare times, beside the rollback's own lines labelled with their clock."""
    question = "approval pause: 5%: canary 0.08% vs baseline 0.10%; approval needed before 25%"
    rec = before_trigger("carol", "users report 500s on save", passed(190, 0),
                         Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=question))
    behind = T0 - 3 * 3600  # the wall clock, hours behind the rollout's entries
    assert f"- **While it waited at a pause:** asked at {utc(T0 + 200)} (rollout clock) for stage 2/3" in \
        incident_report(rec, now=behind)
    ledger = FakeLedger()
    ledger.create(record([started(), shift(60, 5, 0)], RolloutPhase.PROGRESSING), owner="flow-run/run-1", now=T0,
                  lease_seconds=300)
    ledger.acquire(SERVICE, owner="flow-run/run-2", now=T0 + 400, lease_seconds=300, wall=T0 + 400)
    begin_rollback(ledger, SERVICE, actor="judge", reason="5%: canary is worse", now=T0 + 460)
    text = incident_report(back_from_five(ledger, T0 + 500, "rollback"), now=behind)
    assert f"## Runs that took the rollout over\n\n- {utc(T0 + 400)} (rollout clock): flow-run/run-2 took" in text, text
    # At real time, as before.
    assert f"asked at {utc(T0 + 200)} for stage 2/3" in incident_report(rec, now=T0 + 400)


def test_when_the_next_weekly_phase_may_start_is_given_in_utc_as_every_other_time_with_the_local_reading_beside():
    """The report's times are UTC, but the next phase's start was given in the spec's weekly_timezone
    alone ("Mon 2027-01-18 09:00 CET"): one line an hour off the others, for whoever missed its zone."""
    from rollway.weekly import describe, next_phase_due

    weekly = RolloutSpec(image=IMAGE, weekly_timezone="Europe/Berlin")
    rec = record([started(), Transition(at=T0, kind="phase", actor="alice", comment="starting week 1"),
                  shift(60, 5, 0), passed(700, 0),
                  Transition(at=T0 + 700, kind="phase", actor="alice", comment="5%: passed; this phase ends at 5%")],
                 RolloutPhase.PAUSED, weights=w(5)).model_copy(update={
                     "spec_json": weekly.model_dump_json(), "weekly_phase_index": 0, "weekly_phase_passed": True,
                     "weekly_phase_started_at": T0, "phased": True})
    due = next_phase_due(T0, **weekly.phase_calendar())
    said = f"{utc(due)} ({describe(due, 'Europe/Berlin')})"
    text = rollout_report(rec)
    (outcome,) = [x for x in text.splitlines() if x.startswith("- **Outcome:**")]
    assert f"may start from {said} (the first advance_phase run" in outcome, outcome
    assert f"not yet: may start from {said}" in text.split("## Weekly phases", 1)[1], text


def test_the_rollback_step_that_disabled_a_flag_says_what_the_flag_served_before_it():
    """"the feature flags it binds disabled (`sqs-sessions`)": what users had of the feature until
    then (on for a quarter of them, say) was in the transitions alone."""
    rec = guardrail_rollback(flags=("sqs-sessions", "new-editor"))
    rec = rec.model_copy(update={"history": (*rec.history[:2], flag_move(60, "sqs-sessions: off 0% -> on 5% (v2)"),
                                             *rec.history[2:])})
    (step,) = [x for x in incident_report(rec).splitlines() if x.startswith("4. ")]
    assert step == ("4. the feature flags it binds disabled (`sqs-sessions`, on 5% (v2) until then; `new-editor`; their "
                    "audit trail names this rollout);"), step


def looked_back_through_an_outage() -> RolloutRecord:
    """A rollout whose run's look at the canary rolled it back while the Prefect API could not be
    reached, and which read dana's answer to the pause it ended only once the API came back: the
    ledger's ``not-applied`` entry after the rollback's end, as the run records it."""
    question = ("approval pause: 5%: canary 0.08% vs baseline 0.10%; approval needed before 25%; unanswered by "
                f"{utc(T0 + 3800)} (wall clock) the rollout rolls back")
    why = ("5%: canary error rate 5.00% (750/15,000) is over the 1% guardrail (judged while the run waited for an "
           "answer, before it had read one)")
    return record([
        started(), shift(60, 5, 0), passed(190, 0),
        Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=question),
        Transition(at=T0 + 320, kind="rollback-start", actor="guardrail", comment=why),
        Transition(at=T0 + 330, kind="rollback", actor="guardrail", to_weights=w(0), comment=why),
        Transition(at=T0 + 450, kind="not-applied", actor="dana", to_stage=1,
                   verdict="5%: canary 0.08% vs baseline 0.10%; approval needed before 25%",
                   comment="approve: dashboards fine; not applied: the run's look at the canary ended the pause "
                           "before the run could read it, and rolled the rollout back while the Prefect API could "
                           f"not be reached: {why}"),
    ], RolloutPhase.ROLLED_BACK)


def test_an_answer_the_run_read_only_after_its_look_rolled_back_is_in_the_approvals_table_not_unanswered():
    """Dana answered a pause whose wait the run's look at the canary ended while the Prefect API was
    away; the run read her answer once it came back and recorded it after the rollback's end. The
    Approvals table said the pause was "not answered" and left her answer out: only the timeline
    had it, and a postmortem read from the table said nobody had answered."""
    text = rollout_report(looked_back_through_an_outage())
    approvals = text.split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    assert "not answered" not in approvals, approvals
    (row,) = [line for line in approvals.splitlines() if "| dana |" in line]
    # When the run read (and recorded) it, as the timeline has it; the wait up to the rollback's start.
    assert row.startswith(f"| {utc(T0 + 450)} | 2.0 min | dana | approve, **not applied**: the canary's look had "
                          "rolled the rollout back first (the pause asked at "
                          f"{utc(T0 + 200)}; its wait ended with rollback-start (guardrail, {utc(T0 + 320)}); the "
                          "answer read after the rollback's end) | 25% | dashboards fine | approval pause: "), row
    assert "approval needed before 25%; unanswered by" in row, row
    assert "**Waited for people's answers:** 2.0 min in all, at 1 pause" in approvals, approvals
    # The timeline's row of it, at the same time.
    assert f"| {utc(T0 + 450)} | not-applied | dana |" in text


def test_the_incident_report_names_the_answer_its_look_rolled_back_before_the_run_read_it():
    """The incident report's trigger said of the pause the look ended "not answered", of a pause
    dana had answered: the postmortem could not tell that a person had approved what the guardrail
    then rolled back, nor that her approval was never applied."""
    trigger = incident_report(looked_back_through_an_outage()).split("## What triggered it", 1)[1].split("## ", 1)[0]
    assert (f"- **While it waited at a pause:** asked at {utc(T0 + 200)} for stage 2/3 (25%), answered approve by "
            "dana (comment: dashboards fine), **not applied**: the canary's look had rolled the rollout back first "
            f"(the answer read at {utc(T0 + 450)}, after the rollback's end): approval pause: ") in trigger, trigger
    assert "not answered" not in trigger, trigger


def test_an_answer_read_after_the_rollback_says_when_it_was_given():
    """Dana answered at 00:04:10; the Prefect API was away, and the run read her answer only once it
    was back, after the rollback's end (00:07:30). The ledger keeps when she gave it, and neither the
    Approvals table nor the incident report said so: the postmortem read that she answered after
    the rollback, when she had answered before its start."""
    rec = looked_back_through_an_outage()
    late = rec.history[-1].model_copy(update={"answered_at": T0 + 250})
    rec = rec.model_copy(update={"history": (*rec.history[:-1], late)})
    approvals = rollout_report(rec).split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    (row,) = [line for line in approvals.splitlines() if "| dana |" in line]
    assert f"the answer given at {utc(T0 + 250)}, read after the rollback's end) |" in row, row
    trigger = incident_report(rec).split("## What triggered it", 1)[1].split("## ", 1)[0]
    assert f"(the answer given at {utc(T0 + 250)}, read at {utc(T0 + 450)}, after the rollback's end)" in trigger, (
        trigger)


def test_an_answer_refused_as_the_look_rolled_back_is_named_with_the_pause_it_answered():
    """Dana answered as the run's look at the canary rolled the rollout back (the Prefect API back
    for a moment): the run recorded her answer as refused, not applied. The Approvals table said the
    pause was "not answered" above her refused answer, and the incident report's pause line said
    "not answered" and named nobody: the postmortem read that nobody had answered."""
    question = ("approval pause: 5%: canary 0.08% vs baseline 0.10%; approval needed before 25%; unanswered by "
                f"{utc(T0 + 3800)} (wall clock) the rollout rolls back")
    why = "5%: canary error rate 5.00% (750/15,000) is over the 1% guardrail"
    rec = before_trigger("guardrail", why, passed(190, 0),
                         Transition(at=T0 + 200, kind="pause", actor="alice", to_stage=1, comment=question))
    rec = rec.model_copy(update={"refused_answers": (RefusedAnswer(
        at=T0 + 300, actor="dana", action="approve", comment="fine", to_stage=1,
        question="5%: canary 0.08% vs baseline 0.10%; approval needed before 25%",
        reason=f"not applied: the run's look at the canary came first, and the rollout rolls back: {why}"),)})
    approvals = rollout_report(rec).split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    (row,) = [line for line in approvals.splitlines() if line.startswith(f"| {utc(T0 + 200)} |")]
    assert "not answered" not in row, row
    assert f"| **no answer taken** (refused: approve by dana at {utc(T0 + 300)}) | 25% | the wait ended with " in (
        row), row
    trigger = incident_report(rec).split("## What triggered it", 1)[1].split("## ", 1)[0]
    assert (f"- **While it waited at a pause:** asked at {utc(T0 + 200)} for stage 2/3 (25%), answered approve by dana "
            f"at {utc(T0 + 300)} (comment: fine; refused: not applied: the run's look at the canary came first, and "
            f"the rollout rolls back: {why}): {question}") in trigger, trigger
    assert "not answered" not in trigger, trigger


@pytest.mark.parametrize("kind", ["rollback", "breach"])
def test_the_incident_reports_timeline_says_how_many_refused_answers_were_dropped(kind):
    """Its timeline lists the refused answers the ledger kept: past the bound it keeps only the
    newest, and the incident report said nothing of those dropped, so the answers listed read as
    every one there had been. Said under the timeline in `rollway status`'s and the rollout report's
    words, and only when some were dropped."""
    from tests.unit.test_breach_incident import breach_standing

    rec = guardrail_rollback() if kind == "rollback" else breach_standing()
    # Recorded after the history as it stands, as the ledger records it: not one placed by its time.
    rec = rec.model_copy(update={"refused_answers": (RefusedAnswer(
        at=T0 + 300, actor="dana", action="approve", to_stage=0, reason="nothing waits for an answer",
        recorded_after=len(rec.history)),), "refused_dropped": 3})

    def timeline(text: str) -> str:
        return text.split("## Timeline", 1)[1].split("\n## ", 1)[0]

    listed = timeline(incident_report(rec))
    assert f"| {utc(T0 + 300)} | refused | dana |" in listed, listed
    assert listed.rstrip().endswith("**3 older refused answers were dropped: the ledger keeps only the newest.**"), (
        listed)
    one = timeline(incident_report(rec.model_copy(update={"refused_dropped": 1})))
    assert one.rstrip().endswith("**1 older refused answer was dropped: the ledger keeps only the newest.**"), one
    # None dropped: the answers listed are all there were, and nothing is said.
    assert "older refused answer" not in incident_report(rec.model_copy(update={"refused_dropped": 0}))
    # Below the rollout report (`rollway report`), whose Approvals say it already, it is not said twice.
    assert "older refused answer" not in incident_report(rec, timeline_above=True)


def test_an_answer_given_to_a_dead_paused_run_is_in_its_stages_approval_and_at_its_stage():
    """Dana approved in the Prefect UI a paused run whose process had died; the run that took the
    rollout over recorded her answer as unheard (as ``unheard_transitions`` writes it: with the
    question, no stage index) and asked again. The stage's approval said nothing of her answer, and
    the Approvals table's row gave no stage ("-"): a postmortem could not tell which pause she had
    answered, nor that the approval the rollout waited for had been given once before."""
    from rollway.ledger import TAKEOVER

    question = "approval pause: approval needed before 25%; unanswered by 2027-01-15 10:00:00 UTC (wall clock)"
    rec = record([
        started(), shift(60, 5, 0), passed(600, 0),
        Transition(at=T0 + 600, kind="pause", actor="alice", to_stage=1, comment=question),
        Transition(at=T0 + 1800, kind=TAKEOVER, actor="run-2", comment="took the rollout over from run-1"),
        Transition(at=T0 + 1800, kind=UNHEARD, actor="dana", verdict="approval needed before 25%",
                   comment="approve: ok (given to flow run dead-fox (123) at 2027-01-15 08:15:00 UTC, wall clock, "
                           "after its process had died: it last said it waited at 2027-01-15 08:12:00 UTC; not "
                           "acted on, the run that took the rollout over asks again)"),
        Transition(at=T0 + 1800, kind="pause", actor="alice", to_stage=1, comment=question),
        Transition(at=T0 + 2400, kind="approve", actor="bob", to_stage=1, comment="approve: fine",
                   verdict="approval needed before 25%"),
        shift(2400, 25, 1, 5),
    ], RolloutPhase.PROGRESSING)
    text = rollout_report(rec)
    (row,) = [x for x in text.splitlines() if x.startswith("| 2/3 |")]
    assert (f"(asked from {utc(T0 + 600)}; run-2 took the rollout over at {utc(T0 + 1800)} from a run that had "
            "stopped, and asked again; dana's answer not acted on (its run had stopped saying it waits)) |") in row, row
    approvals = text.split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    (unheard,) = [x for x in approvals.splitlines() if "| dana |" in x]
    assert "| dana | approve, not acted on (its run had stopped saying it waits) | 25% | ok (given to flow run dead-fox" in unheard, unheard


def rolled_back_by_hand_after_a_dead_run_was_answered(stage: int | None = None, words: str = "ok") -> RolloutRecord:
    """Dana approved in the Prefect UI a paused run whose process had died; the operator then ran the
    rollback flow, which records her answer as unheard once the traffic is back (before the
    rollback's end), with its question, and with its pause's stage index (``stage``) or, as records
    written before it was kept, none."""
    question = "approval pause: approval needed before 25%; unanswered by 2027-01-15 10:00:00 UTC (wall clock)"
    return record([
        started(), shift(60, 5, 0), passed(600, 0),
        Transition(at=T0 + 600, kind="pause", actor="alice", to_stage=1, comment=question),
        Transition(at=T0 + 1800, kind="rollback-start", actor="operator", comment="the run had died"),
        Transition(at=T0 + 1830, kind=UNHEARD, actor="dana", verdict="approval needed before 25%", to_stage=stage,
                   comment=f"approve: {words} (given to flow run dead-fox (123) at 2027-01-15 08:15:00 UTC, wall "
                           "clock, after its process had died: it last said it waited at 2027-01-15 08:12:00 UTC; not "
                           "acted on, the rollout was rolled back since)"),
        Transition(at=T0 + 1830, kind="rollback", actor="operator", to_weights=w(0), comment="the run had died"),
    ], RolloutPhase.ROLLED_BACK)


def test_an_answer_to_a_dead_paused_run_recorded_after_the_rollback_is_at_the_stage_it_answered():
    """Recorded with no stage index, the answer's row in the Approvals table gave no stage ("-"): the
    rollback ended the wait it walked back through, and the postmortem could not tell which pause
    dana had answered."""
    approvals = rollout_report(rolled_back_by_hand_after_a_dead_run_was_answered()).split(
        "## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    (unheard,) = [x for x in approvals.splitlines() if "| dana |" in x]
    assert "| dana | approve, not acted on (its run had stopped saying it waits) | 25% | ok (given to flow run dead-fox" in unheard, unheard


@pytest.mark.parametrize(("stage", "words"), [(1, "ok"), (None, "ok"), (1, "as said (given to flow run x) ok")])
def test_a_pause_a_rollback_ended_after_a_dead_run_was_answered_is_not_said_unanswered(stage, words):
    """The pause's row said "**not answered**" above dana's row, and the incident report's pause line
    "not answered": the postmortem read that nobody had answered it. Her words are hers whatever
    they hold."""
    rec = rolled_back_by_hand_after_a_dead_run_was_answered(stage, words)
    approvals = rollout_report(rec).split("## Approvals", 1)[1].split("## Every recorded transition", 1)[0]
    assert "not answered" not in approvals, approvals
    (row,) = [x for x in approvals.splitlines() if x.startswith(f"| {utc(T0 + 600)} |")]
    assert "| **no answer taken** (not acted on: approve by dana, its run had stopped saying it waits) | 25% |" in row, row
    trigger = incident_report(rec).split("## What triggered it", 1)[1].split("## ", 1)[0]
    assert (f"- **While it waited at a pause:** asked at {utc(T0 + 600)} for stage 2/3 (25%), answered approve by dana "
            f"(comment: {words}), not acted on: its run had stopped saying it waits: approval pause: ") in trigger, trigger


def test_control_characters_from_the_ledger_are_shown_escaped_never_sent_as_they_are():
    """A reason quoting a crashed process's coloured output, or a name pasted with an escape
    sequence, reached the reports as it was: `rollway report` sent the escape sequences to the
    terminal (colours, a cleared screen, a carriage return writing over who did it), and the
    artifact showed stray "[31m"s around an invisible character."""
    reason = "run crashed: \x1b[31mFATAL\x1b[0m worker lost\x00"
    rolled_back = record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 660, kind="rollback-start", actor="carol\x1b]0;pwned\x07", comment=reason),
        Transition(at=T0 + 700, kind="rollback", actor="carol\x1b]0;pwned\x07", to_weights=w(0), comment=reason),
    ], RolloutPhase.ROLLED_BACK, weights=w(0))
    for text in (rollout_report(rolled_back), incident_report(rolled_back)):
        assert not [c for c in text if c not in "\n" and not c.isprintable()], repr(text)
        assert r"run crashed: \x1b[31mFATAL\x1b[0m worker lost\x00" in text
        assert r"carol\x1b]0;pwned\x07" in text


@pytest.mark.parametrize("seconds, said", [
    (45, "45 s"), (119.4, "119 s"), (119.6, "2.0 min"), (120, "2.0 min"),
    (7196, "119.9 min"), (7198, "2.0 h"), (172_799, "2.0 days"), (172_000, "47.8 h"), (-3, "0 s"),
])
def test_a_duration_is_said_in_the_unit_its_rounded_figure_belongs_to(seconds, said) -> None:
    """119.6 s read "120 s", 7198 s "120.0 min" and 172,799 s "48.0 h": the figure rounded up past
    the bound that moves it to the next unit, said in the smaller one."""
    assert duration(seconds) == said


@pytest.mark.parametrize("seconds, said", [
    (2.5, "3 s"), (118.5, "119 s"), (119.5, "2.0 min"), (135, "2.3 min"), (7197, "2.0 h"), (9 * 3600 + 180, "9.1 h"),
    (3 * 86400 + 4320, "3.1 days"),
])
def test_a_duration_rounds_a_half_up_as_every_other_span_does(seconds, said) -> None:
    """Rounded half to even (Python's own), 2.5 s read "2 s" and 135 s "2.2 min", less than was
    spent, where the run's log (``duration_said``) says 2.5 s "3 s"."""
    assert duration(seconds) == said


def test_the_incident_report_gives_the_timeline_the_post_mortem_is_written_from():
    """The incident report gave the trigger, the stages and the rollback's steps, but no timeline:
    who approved what, with which words, and when each entry was recorded, were in the rollout
    report alone, which the post-mortem's author had to find and lay beside it."""
    rec = record([
        started(), shift(60, 5, 0), passed(700, 0),
        Transition(at=T0 + 800, kind="approve", actor="bob", to_stage=1, comment="approve: dashboards look fine",
                   verdict="approval before 25%"),
        shift(810, 25, 1, 5),
        Transition(at=T0 + 1200, kind="rollback-start", actor="judge",
                   comment="25%: canary error rate 4.80% (48/1000) is over the 1% guardrail"),
        Transition(at=T0 + 1230, kind="rollback", actor="judge", from_weights=w(25), to_weights=w(0),
                   comment="25%: canary error rate 4.80% (48/1000) is over the 1% guardrail"),
    ], RolloutPhase.ROLLED_BACK, weights=w(0))
    text = incident_report(rec)
    timeline = text.split("## Timeline", 1)[1].split("\n## ", 1)[0]
    assert f"| {utc(T0)} | start | alice |" in timeline
    assert f"| {utc(T0 + 800)} | approve | bob |  | approve: dashboards look fine; approval before 25% |" in timeline
    assert f"| {utc(T0 + 1200)} | rollback-start | judge |" in timeline
    assert f"| {utc(T0 + 1230)} | rollback | judge | 75/25 → 100/0 |" in timeline


def rolled_back_after_a_breach_not_rolled_back(*, breach: bool = True) -> RolloutRecord:
    """Promoted; its monitoring window saw the guardrail breached and could not roll back (another
    run had closed the window), and a person then ran the rollback flow, as the breach's page says."""
    from rollway.finalize import kept_breach_way_out
    from rollway.ledger import BREACH_KEPT

    promoted = [started(), shift(60, 5, 0), passed(700, 0), shift(710, 100, 1, 5),
                Transition(at=T0 + 2200, kind="promote", actor="alice", to_weights=w(100), comment="every stage passed")]
    saw = "canary error rate 6.00% (60/1000) is over the 5% guardrail"
    kept = record(promoted, RolloutPhase.PROMOTED, stages=(5, 100))
    comment = (f"monitoring after promotion: {saw}; not rolled back: the monitoring window was closed by run x. The "
               f"release stays in production; {kept_breach_way_out(kept)}")
    seen = [Transition(at=T0 + 5900, kind=BREACH_KEPT, actor="monitor", comment=comment, wall=T0 + 5900)] if breach else []
    why = "users report 500s since the promotion"
    return record([*promoted, *seen, Transition(at=T0 + 7000, kind="rollback-start", actor="carol", comment=why),
                   Transition(at=T0 + 7060, kind="rollback", actor="carol", to_weights=w(0), comment=why)],
                  RolloutPhase.ROLLED_BACK, stages=(5, 100), weights=w(0))


def test_a_rollback_after_a_breach_the_monitor_could_not_roll_back_names_the_breach():
    """The monitoring window saw the guardrail breached but could not roll back (another run had
    closed the window), and a person ran the rollback flow 18 minutes later: the incident report's
    trigger named only the person and their words, so a reader who was not there learnt neither
    when users were first hurt nor what the guardrail measured, and its next steps said the judge
    had passed what the person saw, though the monitor's guardrail had caught it."""
    text = incident_report(rolled_back_after_a_breach_not_rolled_back())
    trigger = text.split("## What triggered it", 1)[1].split("## Exposure", 1)[0]
    (line,) = [x for x in trigger.splitlines() if x.startswith("- **Breach before it:**")]
    assert f"at {utc(T0 + 5900)}" in line and "18.3 min before the rollback began" in line, line
    assert "canary error rate 6.00% (60/1000) is over the 5% guardrail" in line, line
    assert "could not roll back" in line and "stayed in production" in line, line
    # Its page's advice ("run the `rollback` flow") was followed: not repeated as if still to do.
    assert "`rollback` flow (the rollback deployment)" not in line, line
    steps = next_steps(text)
    assert "the judge passed what the person saw" not in steps, steps
    assert "webordinary-edit-service-canary-monitoring" in text.split("## Evidence", 1)[1]
    # A person's rollback with no breach before it is said as before.
    plain = incident_report(rolled_back_after_a_breach_not_rolled_back(breach=False))
    assert "Breach before it" not in plain and "the judge passed what the person saw" in next_steps(plain)


def stopped_with_the_traffic_back_then_finished_a_day_later() -> RolloutRecord:
    """The judge's rollback put the traffic back (100/0 read back) and stopped on a later step (a
    flag it could not disable); carol finished it with `rollway abort` the next morning."""
    reason = "5%: canary 3% vs baseline 0.1%"
    return record([
        started(), shift(60, 5, 0),
        Transition(at=T0 + 100, kind="rollback-start", actor="judge", comment=reason, wall=T0 + 100),
        Transition(at=T0 + 160, kind="rollback-stopped", actor="judge", from_weights=w(5), to_weights=w(0),
                   wall=T0 + 160, comment="done: weights 100/0 verified; canary scaled to 0 on td:1; notified; not "
                                          "done: disable every bound flag (could not disable beta_editor: throttled)"),
        Transition(at=T0 + 86_400, kind="rollback", actor="carol", from_weights=w(0), to_weights=w(0),
                   wall=T0 + 86_400, comment=reason),
    ], RolloutPhase.ROLLED_BACK, weights=w(0))


def test_a_rollback_finished_after_its_stopped_run_put_the_traffic_back_counts_the_exposure_to_that_read_back():
    """The first run of the rollback read 100/0 back a minute after it began, then stopped on a
    flag; the run that finished it a day later read 100/0 again. The incident report counted the
    exposure, the time to restore, the stage and the window to read the logs in up to the second
    read-back: "exposed for 24.0 h", "traffic back 24.0 h after the rollback began"."""
    rec = stopped_with_the_traffic_back_then_finished_a_day_later()
    text = incident_report(rec)
    assert f"**Exposed for:** {duration(100)}" in text, text
    assert f"**Traffic back on stable:** at most {duration(60)} after the rollback began" in text, text
    assert f"from {utc(T0 + 60)} to {utc(T0 + 160)}" in next_steps(text), next_steps(text)
    assert "24.0 h" not in text, text
    (line,) = stage_lines(rec)
    assert line.ended_at == T0 + 160
    # Both read-backs are listed, the first as the traffic's return.
    back = text.split("## Traffic moved back", 1)[1].split("## Rollback steps", 1)[0]
    assert f"{utc(T0 + 160)}: the load balancer read back **100/0**" in back, back
    assert f"{utc(T0 + 86_400)}: the load balancer read back **100/0**" in back, back


def test_a_breach_before_a_rollback_recorded_without_its_start_is_named_as_well():
    """A rollback recorded before rollbacks wrote their start (its end alone) after such a breach:
    the trigger's breach line and the evidence's monitor window are read from the same entry."""
    rec = rolled_back_after_a_breach_not_rolled_back()
    rec = rec.model_copy(update={"history": tuple(t for t in rec.history if t.kind != "rollback-start")})
    text = incident_report(rec)
    assert "- **Breach before it:**" in text.split("## Exposure", 1)[0], text
    assert "webordinary-edit-service-canary-monitoring" in text.split("## Evidence", 1)[1]


def test_an_unfinished_rollbacks_incident_report_does_not_open_saying_it_was_rolled_back():
    """Its first sentence read "`<image>` was rolled back: the rollback began and is not recorded as
    finished": the headline said the release was out, the rest of it that nobody knows."""
    opening = incident_report(guardrail_rollback(finished=False)).split("\n\n", 2)[1]
    assert "was rolled back" not in opening, opening
    assert opening == (f"`{IMAGE}` is being rolled back: the rollback began and is **not recorded as finished** (the "
                       "canary may still take traffic)."), opening
    assert incident_report(guardrail_rollback()).split("\n\n", 2)[1] == f"`{IMAGE}` was rolled back at {utc(T0 + 700)}."


def test_an_unfinished_rollback_whose_traffic_is_recorded_back_does_not_open_saying_the_canary_may_take_it():
    """A rollback run that read the traffic back on stable (100/0) and stopped on a later step: the
    report's opening said "the canary may still take traffic" above its own "Users get since the
    rollback: the stable service alone" and "Traffic back on stable" lines."""
    text = incident_report(stopped_after_paging("m-1"))
    opening = text.split("\n\n", 2)[1]
    assert "may still take traffic" not in opening, opening
    assert opening == (f"`{IMAGE}` is being rolled back: the rollback began and is **not recorded as finished** (the "
                       "ledger records the traffic back on the stable service; not every step after it is recorded as "
                       "done)."), opening
    assert "**Traffic back on stable:**" in text
    # Whose traffic's return is not recorded: as before.
    assert "(the canary may still take traffic)." in incident_report(guardrail_rollback(finished=False))


def test_a_refused_answer_to_no_recorded_pause_and_those_dropped_are_in_the_approvals():
    """`rollway promote` refusing an answer for a run whose pause the ledger never recorded (its
    write failed) records it with no stage: the report failed on it with an AttributeError, where
    its row says "-" for the stage. Refused answers dropped past the bound are said under the table."""
    from tests.unit.test_fake_ledger import rollout

    refused = RefusedAnswer(at=1000.0, actor="erin", action="approve", reason="given with `rollway promote`, not "
                                                                              "taken: the pause timed out")
    record = rollout(refused_answers=(refused,), refused_dropped=3)
    approvals = rollout_report(record).split("## Approvals", 1)[1].split("\n## ", 1)[0]
    assert f"| {utc(1000.0)} | - | erin | **refused** approve: " in approvals, approvals
    assert "timed out | - |  |  |" in approvals, approvals  # stage, comment, question: none recorded
    assert approvals.rstrip().endswith("**3 older refused answers were dropped: the ledger keeps only the newest.**")
    kept = rollout_report(record.model_copy(update={"refused_dropped": 0}))
    assert "older refused answer" not in kept, kept
