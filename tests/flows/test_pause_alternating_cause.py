"""A pause nobody answers whose cause alternates at one stage: metrics readable but inconclusive at
one asking, unreadable at the next, each asking timing out under a policy that holds.

Every asking added a pause entry and a timeout entry (12 askings over two hours: 23 entries,
growing for as long as nobody answered, towards DynamoDB's 400 KB item limit), the report's
Approvals table had a row per asking, and its timeline repeated "pause / timeout" all along.
Whatever the ledger leaves out, `rollway status` must still give the question asked now.
"""

from __future__ import annotations

from types import SimpleNamespace

from prefect import flow
from rich.console import Console

from flows.progressive import run_progressive
from rollway.approvals import ApprovalAnswer
from rollway.cli import ops
from rollway.reports import open_question, rollout_report, waiting_pause
from rollway.spec import Approvals, RolloutSpec, Stage
from tests.flows.test_progressive_fakes import IMAGE, env_with_ledger

ASKINGS = 12
SPEC = RolloutSpec(image=IMAGE, stages=[Stage(weight=5, bake_seconds=120), Stage(weight=100, bake_seconds=120)],
                   approvals=Approvals(timeout_seconds=600, on_timeout="hold"), monitor_seconds=0)


@flow
def rollout_on(env, spec, approver):
    return run_progressive(env, spec, approver, owner="run-1", actor="alice", phased=False)


def nobody_answers(env, askings, look):
    """An approver nobody answers ``askings - 1`` times (each timing out, the policy holding) before
    dana rejects, CloudWatch answering at one asking and not at the next; ``look(pause)`` at each
    asking, before its wait."""
    count = []

    def approver(pause, summary):
        look(pause)
        count.append(pause)
        env.clock.sleep(600)
        env.metrics.error = None if env.metrics.error else "CloudWatch throttled the read"
        if len(count) < askings:
            return ApprovalAnswer(action="hold", approver="timeout", timed_out=True, comment="no answer within 600 s")
        return ApprovalAnswer(action="reject", approver="dana", comment="enough")

    return approver


def test_a_pause_whose_cause_alternates_records_each_question_once_and_reports_one_row(monkeypatch, capsys):
    monkeypatch.setattr(ops, "console", Console(highlight=False, soft_wrap=True, width=1000))  # a row a line
    env = env_with_ledger(rps=0.01)  # too little traffic: inconclusive whenever the metrics are read
    asked = []  # (cause, the question the ledger gives as open, what status printed)

    def look(pause):
        record = env.ledger.get(env.targets.canary_service)
        ops.print_status(SimpleNamespace(name=record.service, targets=env.targets), record, record.weights, None,
                         limit=10)
        asked.append((pause.cause, open_question(record, waiting_pause(record)), capsys.readouterr().out))

    assert rollout_on(env, SPEC, nobody_answers(env, ASKINGS, look)).outcome == "rolled_back"
    assert [cause for cause, _, _ in asked] == ["inconclusive", "metrics"] * (ASKINGS // 2)

    # At every asking the ledger, and status, give the question asked then, not an older one.
    for cause, question, status in asked:
        assert question.startswith(f"{cause} pause: 5%"), (cause, question)
        assert question in status, (question, status)

    record = env.ledger.get(env.targets.canary_service)
    kinds = [t.kind for t in record.history]
    between = kinds[kinds.index("shift") + 1:kinds.index("reject")]
    # Each question once, and one timeout for the unanswered wait: not an entry per asking.
    assert between == ["pause", "timeout", "pause"], kinds
    assert record.open_pause is None  # answered: nothing is open any more

    report = rollout_report(record)
    approvals = report.split("## Approvals")[1].split("##")[0]
    rows = [line for line in approvals.splitlines() if line.startswith("| ") and not line.startswith("| when")]
    (row,) = rows
    assert "| dana | reject | 5% | enough |" in row, row
    assert f"asked {ASKINGS} times" in row and "causes: inconclusive, metrics" in row, row
    assert "last asked: 5%: metrics unavailable: CloudWatch throttled the read" in row, row
    timeline = report.split("## Every recorded transition")[1]
    assert sum(" | timeout | " in line for line in timeline.splitlines()) == 1, timeline
    # People are told of each question once: a message an asking buried the rollout's others.
    told = [message for subject, message in env.notifier.messages if subject.startswith("Rollout waits")]
    assert [m.split(": ", 1)[1][:30] for m in told] == ["inconclusive pause: 5%: stage ", "metrics pause: 5%: metrics una"]


def test_while_it_waits_the_report_gives_one_row_for_the_askings_so_far():
    env = env_with_ledger(rps=0.01)
    reports = []

    rollout_on(env, SPEC, nobody_answers(env, 5, lambda pause: reports.append(
        rollout_report(env.ledger.get(env.targets.canary_service)))))
    report = reports[-1]  # the fifth asking, inconclusive again
    approvals = report.split("## Approvals")[1].split("##")[0]
    rows = [line for line in approvals.splitlines() if line.startswith("| ") and not line.startswith("| when")]
    (row,) = rows
    assert "**waiting for an answer**" in row and "asked 5 times" in row, row
    assert "causes: inconclusive, metrics" in row and "last asked: inconclusive pause: 5%" in row, row


def test_a_wait_begun_before_the_open_pause_was_kept_counts_its_askings_from_its_entries():
    """A run of a release that kept no open pause asked first (the record has none); the run asking
    again counts from the wait's entries: since its first question, and that question's cause."""
    env = env_with_ledger(rps=0.01)
    service = env.targets.canary_service
    seen = []

    def look(pause):
        record = env.ledger.get(service)
        if not seen:  # as an older release left it
            env.ledger._rollouts[service][-1] = record.model_copy(update={"open_pause": None})
        seen.append((env.wall(), record.open_pause))

    rollout_on(env, SPEC, nobody_answers(env, 3, look))
    first_asked, _ = seen[0]
    (_, second), (_, third) = seen[1:]
    assert (second.asked, second.since, second.causes) == (2, first_asked, ("inconclusive", "metrics")), second
    assert (third.asked, third.since, third.cause) == (3, first_asked, "inconclusive"), third
    assert env.ledger.get(service).history[-5].asked == 3  # the rejection, before the rollback's entries
