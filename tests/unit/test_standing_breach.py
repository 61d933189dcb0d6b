"""Which breach not rolled back still stands: one answer for `rollway finalize`, `rollway status`,
the rollout report and `rollway promote`'s message, so that none of them says another thing.

A breach the monitoring window could not roll back (``breach-not-rolled-back``) keeps finalize
from putting the release that breached on the stable service. Status and the report read the
newest such entry on their own, and finalize another way: after a finalize began after the breach,
status still said "breach not rolled back ... run the rollback flow" while finalize carried on;
with a breach recorded after a finalize began, status said to run finalize again, which refused."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from rollway.finalize import FinalizeRefused, plan_finalize, unhandled_breach
from rollway.ledger import BREACH_KEPT, RolloutRecord, Transition, utc
from rollway.model import ServiceState, Weights
from rollway.phases import RolloutPhase
from rollway.spec import RolloutSpec, Stage
from rollway.targets import Targets
from rollway.window_said import breach_said

ALL_CANARY = Weights(stable=0, canary=100)
SAID = "the guardrail was breached (error rate 9%), but another run had closed the window: the release stays in production"


def promoted(*kinds: str, phase: RolloutPhase = RolloutPhase.PROMOTED) -> RolloutRecord:
    """A promoted rollout whose window is over, with ``kinds`` as its history, one second apart."""
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=100)], monitor_seconds=0)
    return RolloutRecord(
        service="svc", rollout_id="20260101T000000Z-00000000", image=spec.image, spec_json=spec.model_dump_json(),
        phase=phase, weights=ALL_CANARY, canary_task_definition="app:2", previous_task_definition="app:1",
        stable_desired=3,
        history=tuple(Transition(at=1000.0 + i, kind=k, actor="run-7" if k == BREACH_KEPT else "t",
                                 comment=SAID if k == BREACH_KEPT else None) for i, k in enumerate(kinds)))


def plan(record: RolloutRecord):
    return plan_finalize(record, RolloutSpec.for_rollback(record.spec_json), live=ALL_CANARY,
                         stable=ServiceState(name="s", task_definition="app:1", desired=0, running=0),
                         canary=ServiceState(name="c", task_definition="app:2", desired=3, running=3),
                         targets=Targets())


def status_of(record: RolloutRecord, capsys) -> str:
    from rollway.cli.ops import print_status

    capsys.readouterr()
    print_status(SimpleNamespace(name="svc", targets=Targets()), record, ALL_CANARY, None, limit=1)
    return " ".join(capsys.readouterr().out.split())


def said_everywhere(record: RolloutRecord, capsys) -> dict[str, bool]:
    """Whether each place says the breach stands (and sends people to the `rollback` flow)."""
    from rollway.cli.ops import nothing_paused_next
    from rollway.reports import finalize_row, rollout_report

    try:
        plan(record)
        refused = False
    except FinalizeRefused as err:
        refused = "saw a breach" in str(err)
    report = rollout_report(record)
    return {
        "finalize refuses": refused,
        "status's breach line": "breach not rolled back:" in status_of(record, capsys),
        "status's finalize row": "`rollback` flow" in (finalize_row(record) or ""),
        "the report's breach line": "Breach not rolled back:" in report,
        "the report's outcome": "breach not rolled back" in report.split("Outcome:", 1)[-1].split("\n", 1)[0],
        "promote's message": "`rollback` flow" in nothing_paused_next(record, None),
    }


@pytest.mark.parametrize(("kinds", "stands"), [
    (("start", "promote", "decommission", BREACH_KEPT), True),
    # A finalize begun after the breach (a rollway from before finalize refused, or one told to go
    # on): finalize carries on, and nothing may send people to roll back a release it moves.
    (("start", "promote", "decommission", BREACH_KEPT, "finalize-start"), False),
    # The breach recorded after a finalize began (the window closed cleanly, finalize started, and
    # then the run that lost the race recorded its breach): finalize refuses to carry on, so
    # "run finalize again" was advice that failed.
    (("start", "promote", "decommission", "finalize-start", BREACH_KEPT), True),
    # A second breach after a finalize that went ahead past the first.
    (("start", "promote", "decommission", BREACH_KEPT, "finalize-start", BREACH_KEPT), True),
    (("start", "promote", "decommission"), False),
], ids=["breach", "finalize-began-after-it", "breach-after-finalize-began", "second-breach", "none"])
def test_finalize_status_the_report_and_promote_agree_on_whether_a_breach_stands(kinds, stands, capsys):
    record = promoted(*kinds)
    assert (unhandled_breach(record) is not None) is stands
    assert (breach_said(record) is not None) is stands
    assert said_everywhere(record, capsys) == dict.fromkeys(said_everywhere(record, capsys), stands)


def test_a_breach_rolled_back_since_stands_nowhere(capsys):
    record = promoted("start", "promote", "decommission", BREACH_KEPT, "rollback-start", "rollback",
                      phase=RolloutPhase.ROLLED_BACK)
    assert unhandled_breach(record) is None and breach_said(record) is None
    assert "breach not rolled back" not in status_of(record, capsys)


def test_status_quotes_the_breach_that_stands_with_its_run_and_time(capsys):
    record = promoted("start", "promote", "decommission", BREACH_KEPT, "finalize-start", BREACH_KEPT)
    said = breach_said(record)
    assert said == f"{SAID} (run-7's run, {utc(1005.0)})", said


def said_of_the_way_out(record: RolloutRecord, capsys) -> dict[str, str]:
    """What finalize, status's finalize row, the report's outcome and promote's message say to do."""
    from rollway.cli.ops import nothing_paused_next
    from rollway.reports import finalize_row, rollout_report

    with pytest.raises(FinalizeRefused) as refused:
        plan(record)
    report = rollout_report(record)
    return {"finalize": str(refused.value), "status's finalize row": finalize_row(record) or "",
            "the report's outcome": report.split("Outcome:", 1)[-1].split("\n", 1)[0],
            "promote's message": nothing_paused_next(record, None)}


def test_a_breach_recorded_after_a_finalize_began_claims_nothing_of_what_the_stable_service_runs(capsys):
    # The finalize may have put the release on the stable service before it stopped: "the stable
    # service, still on the previous version" was said without being known.
    record = promoted("start", "promote", "decommission", "finalize-start", BREACH_KEPT)
    said = said_of_the_way_out(record, capsys)
    for where, words in said.items():
        assert "still on the previous version" not in words, (where, words)
        assert "may run the release that breached already" in words, (where, words)
        assert "While it still runs the previous version (revision app:1), the `rollback` flow" in words, (where, words)
        assert "out again as a new rollout" in words, (where, words)


def test_a_breach_with_no_finalize_begun_still_says_the_stable_service_runs_the_previous_version(capsys):
    record = promoted("start", "promote", "decommission", BREACH_KEPT)
    for where, words in said_of_the_way_out(record, capsys).items():
        assert "still on the previous version" in words, (where, words)


def test_promote_on_a_finalized_release_whose_breach_was_recorded_after_names_the_breach_and_the_way_back():
    # Finalize refuses here, naming the breach (the release is on the stable service already);
    # promote said only "finalized ... the next rollout can start", as if the window had closed cleanly.
    from rollway.cli.ops import nothing_paused_next

    record = promoted("start", "promote", "decommission", "finalize-start", "finalized", BREACH_KEPT)
    said = nothing_paused_next(record, None)
    assert "saw a breach it could not roll back" in said, said
    assert "finalized onto the stable service" in said and "out again as a new rollout" in said, said


def with_breach_said(record: RolloutRecord, comment: str) -> RolloutRecord:
    """``record`` with its newest breach-not-rolled-back entry's words replaced by ``comment``."""
    last = max(i for i, t in enumerate(record.history) if t.kind == BREACH_KEPT)
    history = list(record.history)
    history[last] = history[last].model_copy(update={"comment": comment})
    return record.model_copy(update={"history": tuple(history)})


def ways_out_said(record: RolloutRecord, capsys) -> dict[str, str]:
    """Everything `rollway status`, the report, finalize's refusal and promote's message say."""
    from rollway.cli.ops import nothing_paused_next
    from rollway.reports import rollout_report

    with pytest.raises(FinalizeRefused) as refused:
        plan(record)
    return {"status": status_of(record, capsys), "the report": " ".join(rollout_report(record).split()),
            "finalize": str(refused.value), "promote's message": nothing_paused_next(record, None)}


HISTORIES = {
    "no-finalize": ("start", "promote", "decommission", BREACH_KEPT),
    "finalize-began-before": ("start", "promote", "decommission", "finalize-start", BREACH_KEPT),
    "finalized-before": ("start", "promote", "decommission", "finalize-start", "finalized", BREACH_KEPT),
}


def old_entry(record: RolloutRecord, form: str) -> str:
    """The words an older rollway wrote in the entry: the facts, then a way out as it stood then."""
    from rollway.finalize import TAKE_IT_OUT, kept_breach_way_out

    return {"facts": SAID, "take-it-out": f"{SAID}; {TAKE_IT_OUT}",
            "as-written": f"{SAID}; {kept_breach_way_out(record)}",
            "unread": f"{SAID}; {kept_breach_way_out(None, unread='ThrottlingException: Rate exceeded')}"}[form]


@pytest.mark.parametrize("form", ["facts", "take-it-out", "as-written", "unread"])
@pytest.mark.parametrize("history", list(HISTORIES))
def test_status_the_report_finalize_and_promote_say_the_way_out_once_and_as_it_stands(history, form, capsys):
    # The entry used to carry its own way out, worded when it was written: status and the report
    # quoted it beside the one they work out, finalize's refusal read the long form twice in a row,
    # and an entry from before a finalize began kept sending people to the `rollback` flow.
    from rollway.finalize import breach_way_out

    record = promoted(*HISTORIES[history])
    record = with_breach_said(record, old_entry(record, form))
    way_out = breach_way_out(record)
    for where, words in ways_out_said(record, capsys).items():
        assert words.count(way_out) == 1, (where, words)
        assert words.count("`rollback` flow") == 1, (where, words)
        assert "to take it out" not in words and "the ledger could not be read" not in words, (where, words)
        if where != "promote's message":
            assert SAID in words, (where, words)


def test_an_entry_ending_in_words_of_its_own_is_quoted_whole():
    # Only a way out an older rollway wrote is left out of the quote: the facts are never cut.
    record = with_breach_said(promoted(*HISTORIES["no-finalize"]), f"{SAID}; run the rollback by hand")
    assert breach_said(record).startswith(f"{SAID}; run the rollback by hand ("), breach_said(record)


def test_an_accepted_breach_an_older_rollway_recorded_is_quoted_without_its_stale_way_out(capsys):
    # Accepted and finalized, the breach's own "run the `rollback` flow to take it out" still read
    # in status's and the report's acceptance, as if it were advice.
    from rollway.finalize import TAKE_IT_OUT
    from rollway.ledger import BREACH_ACCEPTED
    from rollway.reports import rollout_report
    from rollway.window_said import acceptance_said

    record = with_breach_said(promoted("start", "promote", "decommission", BREACH_KEPT), f"{SAID}; {TAKE_IT_OUT}")
    accepted = Transition(at=1010.0, kind=BREACH_ACCEPTED, actor="dana", comment="the probe's 5xx", breach_at=1003.0)
    record = record.model_copy(update={"history": (*record.history, accepted)})
    said = acceptance_said(record)
    assert said is not None and f"({SAID}, run-7's run)" in said, said
    for where, words in (("status", status_of(record, capsys)), ("the report", rollout_report(record))):
        assert "to take it out" not in words and SAID in words, (where, words)
