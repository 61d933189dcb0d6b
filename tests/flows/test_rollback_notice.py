"""A rollback that dies after paging and before recording its end, run again: people are paged once.

The notice is recorded in the rollout's history right after it went out (a ``notified`` entry with
its SNS message id); the rollback run again finds it, says so in its log and sends nothing. A
notice that failed is not recorded, and the rollback run again sends it. Right before the publish
a ``notifying`` entry says who set out to send it and when: a rollback that died between the two
is finished by one whose page says, at its top, that it may repeat that one.
"""
from __future__ import annotations

import logging
from contextlib import contextmanager

import pytest

from flows.rollback import RollbackIncomplete, rollback
from rollway.aws.errors import TargetNotFound
from rollway.fakes import FakeLedger
from rollway.ledger import LedgerError, Transition, utc, wall_utc
from rollway.model import Weights
from rollway.phases import RolloutPhase
from rollway.reports import incident_report
from tests.flows.test_rollback_claim import rolling_back


class DiesBeforeTheEnd(FakeLedger):
    """The rollback's process dies (here: the write raises what no rollback step catches) when it
    comes to record the rollback's end (``kind``), the first time only."""

    kind = "rollback"

    def __init__(self) -> None:
        super().__init__()
        self.died = False

    def record(self, service, **kwargs):
        if kwargs["transition"].kind == self.kind and not self.died:
            self.died = True
            raise SystemError("the rollback's process was killed")
        return super().record(service, **kwargs)


def test_a_rollback_run_again_after_its_process_died_past_the_notice_pages_nobody_again(monkeypatch, caplog):
    env, first = rolling_back(monkeypatch, DiesBeforeTheEnd(), holder=None, expires_in=0.0)
    service = env.targets.canary_service
    with pytest.raises(SystemError):
        rollback(reason="abort")
    assert len(env.notifier.messages) == 1  # people were paged, and the end is not recorded
    assert env.ledger.get(service).phase is RolloutPhase.ROLLING_BACK

    with caplog.at_level(logging.WARNING):
        done = rollback(reason="finish the abort")  # waits for the dead one's claim to lapse, takes it over

    assert len(env.notifier.messages) == 1, "the rollback run again paged people a second time"
    assert done.notification_id == "msg-1" and env.router.weights == Weights(stable=100, canary=0)
    assert any(s.startswith("notified already by operator at") and "SNS message msg-1" in s for s in done.steps)
    said = [r.getMessage() for r in caplog.records]
    assert any("people were told of this rollback already" in m and "not notified again" in m for m in said), said
    record = env.ledger.get(service)
    assert record.phase is RolloutPhase.ROLLED_BACK
    kinds = [t.kind for t in record.history]
    assert kinds.count("notified") == 1 and kinds[-1] == "rollback", kinds
    assert record.history[-1].message_id == "msg-1"  # the end keeps the one notice's id, as the report says
    assert "SNS message id `msg-1`" in incident_report(record)


class DiesBeforeRecordingTheNotice(DiesBeforeTheEnd):
    """The rollback's process dies right after SNS took its notice, before the ``notified`` entry
    is written, the first time only."""

    kind = "notified"


def may_repeat(actor: str, wall: float) -> str:
    return (f"This notice may repeat one sent at {utc(wall)} (wall clock) by {actor}, whose run stopped before "
            "recording it.\n\n")


def test_a_rollback_run_again_after_its_process_died_right_after_paging_says_its_page_may_repeat(monkeypatch):
    env, first = rolling_back(monkeypatch, DiesBeforeRecordingTheNotice(), holder=None, expires_in=0.0)
    service = env.targets.canary_service
    with pytest.raises(SystemError):
        rollback(reason="abort", actor="carol")
    intent = env.ledger.get(service).last_transition("notifying")
    assert (intent.actor, intent.at) == ("carol", env.clock.now()) and len(env.notifier.messages) == 1

    done = rollback(reason="finish carol's abort", actor="erin")

    (_, first_page), (subject, second_page) = env.notifier.messages
    assert first_page.startswith(f"rollway rolled back {service} ")  # the first page as it always was
    assert subject == f"Rollback: {service}"
    assert second_page.startswith(may_repeat("carol", intent.wall) + f"rollway rolled back {service} "), second_page
    assert "Requested by: erin" in second_page and "may repeat" not in first_page
    assert any(s.startswith("notified (may repeat the notice carol set out to send at") for s in done.steps)
    kinds = [t.kind for t in env.ledger.get(service).history]
    assert kinds[-4:] == ["notifying", "notifying", "notified", "rollback"], kinds


def test_under_a_sped_up_clock_the_page_says_when_the_earlier_notice_was_sent_on_the_wall_clock(monkeypatch):
    """`rollway up`'s clock runs 60 rollout seconds a wall second: ten wall minutes in, the rollout
    clock is ten hours ahead. erin's page said carol's notice was sent at carol's rollout-clock
    time, hours after the people reading it had been paged."""
    env, first = rolling_back(monkeypatch, DiesBeforeRecordingTheNotice(), holder=None, expires_in=0.0)
    start = env.clock.now()
    env.clock.speed = 60.0  # the rollback's waits for a claim sleep wall seconds on it, as on a ScaledClock
    env.clock.t += 10 * 3600

    def wall() -> float:
        return start + 600 + (env.clock.now() - start - 10 * 3600) / 60

    env.wall = wall
    with pytest.raises(SystemError):
        rollback(reason="abort", actor="carol")
    intent = env.ledger.get(env.targets.canary_service).last_transition("notifying")
    paged_at = wall()  # the fake clock stands still until slept on: carol's page went out now

    rollback(reason="finish carol's abort", actor="erin")

    (_, _), (_, second_page) = env.notifier.messages
    first_line = second_page.splitlines()[0]
    assert first_line == (f"This notice may repeat one sent at {utc(paged_at)} (wall clock) by carol, whose run "
                          "stopped before recording it."), first_line
    assert utc(intent.at) not in second_page


class RefusesTheIntent(FakeLedger):
    """DynamoDB refuses the write of the ``notifying`` entry (throttled, say)."""

    def record(self, service, **kwargs):
        if kwargs["transition"].kind == "notifying":
            raise LedgerError("throttled")
        return super().record(service, **kwargs)


def test_a_rollback_whose_ledger_refuses_the_notice_intent_still_pages_and_records_the_notice(monkeypatch, caplog):
    env, first = rolling_back(monkeypatch, RefusesTheIntent(), holder=None, expires_in=0.0)
    with caplog.at_level(logging.WARNING):
        done = rollback(reason="abort")
    assert [subject for subject, _ in env.notifier.messages] == [f"Rollback: {env.targets.canary_service}"]
    assert env.notifier.messages[0][1].startswith("rollway rolled back ")
    record = env.ledger.get(env.targets.canary_service)
    assert record.phase is RolloutPhase.ROLLED_BACK and record.last_transition("notified").message_id == "msg-1"
    assert done.notification_id == "msg-1"
    said = [r.getMessage() for r in caplog.records]
    assert any("could not record that the rollback's notice is being sent (throttled): sending it" in m
               for m in said), said


def rollback_paging_nobody(env) -> None:
    """One rollback run on ``env`` whose SNS topic is gone: every step but the notice is done, and
    the run fails on it (RollbackIncomplete), as a rollback to be run again leaves things."""
    send = env.notifier.notify

    def topic_gone(subject, message):
        raise TargetNotFound("SNS topic", "webordinary-alerts", "in region us-west-2")

    env.notifier.notify = topic_gone
    try:
        with pytest.raises(RollbackIncomplete, match="notify"):
            rollback(reason="abort")
    finally:
        env.notifier.notify = send


def test_a_notice_that_failed_is_sent_by_the_rollback_run_again(monkeypatch):
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    rollback_paging_nobody(env)
    assert "notified" not in [t.kind for t in env.ledger.get(env.targets.canary_service).history]

    done = rollback(reason="abort again")
    assert [subject for subject, _ in env.notifier.messages] == [f"Rollback: {env.targets.canary_service}"]
    assert done.notification_id == "msg-1" and "notified" in done.steps
    # The first run is known to have paged nobody (SNS refused it): no "may repeat" on this page.
    assert env.notifier.messages[0][1].startswith("rollway rolled back ")


def carol_dies_then_erin_finishes(aws, monkeypatch, dies_at: str):
    """On DynamoDB and SNS (moto), through the blocks a person's rollback flow loads: carol's
    rollback dies when it comes to write the ``dies_at`` entry; once its claim lapsed, erin's
    finishes it. Returns (the SNS messages the alert topic delivered, oldest first, as SNS sends
    them, the rollout as stored, erin's result)."""
    import json
    import time

    from rollway.aws.ledger import DynamoLedger
    from tests.flows.moto_env import inbox, saved_blocks
    from tests.flows.test_reports_flow import start_at_five_percent

    blocks = saved_blocks(aws, dies_at)
    url = inbox(aws)
    record, _ = start_at_five_percent(aws)
    service = aws.targets.canary_service
    real_record = DynamoLedger.record

    def dies(self, service, **kwargs):
        if kwargs["transition"].kind == dies_at:
            raise SystemError("the rollback's process was killed")
        return real_record(self, service, **kwargs)

    monkeypatch.setattr(DynamoLedger, "record", dies)
    with pytest.raises(SystemError):
        rollback(reason="users report 500s on save", actor="carol", targets_block=blocks, aws_credentials_block=blocks)
    monkeypatch.setattr(DynamoLedger, "record", real_record)
    # Its claim lapses a minute after its last renewal: moved into the past, as if that minute had gone by.
    aws.get_client("dynamodb").update_item(
        TableName=aws.targets.rollouts_table, Key={"service": {"S": service}, "rollout_id": {"S": record.rollout_id}},
        UpdateExpression="SET rollback_expires = :past", ExpressionAttributeValues={":past": {"N": str(time.time() - 1)}})

    done = rollback(reason="finish carol's rollback", actor="erin", targets_block=blocks, aws_credentials_block=blocks)

    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    pages = sorted((json.loads(m["Body"]) for m in got), key=lambda body: body["Timestamp"])
    return pages, DynamoLedger(aws.get_client("dynamodb"), aws.targets).get(service), done


def test_on_the_embedded_aws_the_rollback_run_again_sends_no_second_sns_notice(aws, monkeypatch):
    """The same on the embedded AWS: the notice's record is a DynamoDB write, and the rollback run
    again reads it back."""
    pages, stored, done = carol_dies_then_erin_finishes(aws, monkeypatch, "rollback")
    assert [p["Subject"] for p in pages] == [f"Rollback: {aws.targets.canary_service}"]
    notice = stored.last_transition("notified")
    assert (notice.actor, notice.message_id) == ("carol", done.notification_id) and done.notification_id
    assert stored.phase is RolloutPhase.ROLLED_BACK and stored.history[-1].message_id == done.notification_id


def test_on_the_embedded_aws_a_rollback_finishing_one_that_died_right_after_paging_says_it_may_repeat(
        aws, monkeypatch):
    """carol's rollback dies after SNS took its notice and before the ``notified`` write; erin's
    finishes it and sends a second notice that says, at its top, that it may repeat carol's."""
    pages, stored, _ = carol_dies_then_erin_finishes(aws, monkeypatch, "notified")
    service = aws.targets.canary_service
    assert [p["Subject"] for p in pages] == [f"Rollback: {service}"] * 2, pages
    intent = next(t for t in stored.history if t.kind == "notifying" and t.actor == "carol")
    assert pages[0]["Message"].startswith(f"rollway rolled back {service} ")
    assert pages[1]["Message"].startswith(may_repeat("carol", intent.wall) + f"rollway rolled back {service} ")
    assert stored.phase is RolloutPhase.ROLLED_BACK


def ended_meanwhile(env, rollout_id: str, actor: str, subject_starts: str = "") -> None:
    """``actor``'s rollback ends ``rollout_id`` right after the notice whose subject starts with
    ``subject_starts`` goes out: it took the claim over after the notifying run's last check."""
    send = env.notifier.notify

    def ends_it_meanwhile(subject, message):
        sent = send(subject, message)
        if subject.startswith(subject_starts):
            FakeLedger.record(env.ledger, env.targets.canary_service, owner=None, now=env.clock.now(),
                              rollout=rollout_id, phase=RolloutPhase.ROLLED_BACK, rollback_holder=None,
                              transition=Transition(at=env.clock.now(), kind="rollback", actor=actor,
                                                    to_weights=Weights(stable=100, canary=0)))
        return sent

    env.notifier.notify = ends_it_meanwhile


def test_a_rollback_whose_rollout_another_ended_meanwhile_records_no_second_end(monkeypatch, caplog):
    """Its claim was taken over after its last check, and the rollback that took it ended the
    rollout while this one sent its notice: this one's end was appended too, on a rolled-back
    rollout, and the reports named it as the rollback that finished."""
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    ended_meanwhile(env, first.rollout_id, "carol")
    with caplog.at_level(logging.WARNING):
        rollback(reason="abort")
    record = env.ledger.get(env.targets.canary_service)
    assert [(t.kind, t.actor) for t in record.history if t.kind == "rollback"] == [("rollback", "carol")]
    said = [r.getMessage() for r in caplog.records]
    assert any("end is not recorded" in m and "rolled back by carol" in m for m in said), said


def answer_lost():
    """A before-send handler for SNS's Publish, and the attempts it was sent: each reaches SNS (moto
    takes the message and delivers it) and its answer is lost, a read timeout, a real botocore
    exception raised where botocore's own HTTP client raises it."""
    from botocore.exceptions import ReadTimeoutError
    from botocore.httpsession import URLLib3Session

    sent: list[str] = []

    def handler(request, **_):
        sent.append(URLLib3Session().send(request).status_code and request.url)
        raise ReadTimeoutError(endpoint_url=request.url)

    return handler, sent


@contextmanager
def publishes_failing(handler):
    """Within the block, every SnsNotifier the flows build sends its Publish through ``handler``;
    taken off the (shared) clients after it."""
    from rollway.aws.sns import SnsNotifier
    from tasks import metrics

    hooked: list = []
    real_init = SnsNotifier.__init__

    def init(self, client, targets):
        real_init(self, client, targets)
        name = f"before-send.{client.meta.service_model.service_id.hyphenize()}.Publish"
        client.meta.events.register(name, handler)
        hooked.append((client, name))

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(SnsNotifier, "__init__", init)
        # The notify task's waits between its tries are not what is tested.
        patch.setattr(metrics, "notify", metrics.notify.with_options(retry_delay_seconds=0))
        try:
            yield
        finally:
            for client, name in hooked:
                client.meta.events.unregister(name, handler)


def test_on_the_embedded_aws_a_notice_whose_answer_sns_lost_is_said_to_may_repeat_by_the_run_again(aws):
    """carol's rollback sends its notice and SNS takes it (people are paged), but the answer is
    lost (a read timeout), and it is not sent again (botocore's resend paged people twice). It was
    recorded as ``notice-failed``, "was not sent": the report and status said nobody was paged, and
    erin's rollback paged again as if for the first time. (A resend refused after it, on a client
    that resends, is the notifier's: tests/adapters/test_sns.py.)"""
    import json

    from rollway.aws.ledger import DynamoLedger
    from tests.flows.moto_env import inbox, saved_blocks
    from tests.flows.test_reports_flow import start_at_five_percent

    blocks = saved_blocks(aws, "lost")
    url = inbox(aws)
    start_at_five_percent(aws)
    service = aws.targets.canary_service
    handler, sent = answer_lost()
    with publishes_failing(handler), pytest.raises(RollbackIncomplete,
                                                   match="SNS's answer was lost, people may have been paged"):
        rollback(reason="users report 500s on save", actor="carol", targets_block=blocks, aws_credentials_block=blocks)
    assert len(sent) == 1, sent  # reached SNS, and not sent again
    ledger = DynamoLedger(aws.get_client("dynamodb"), aws.targets)
    stored = ledger.get(service)
    kinds = [t.kind for t in stored.history]
    assert "notice-unanswered" in kinds and "notice-failed" not in kinds, kinds
    intent = stored.last_transition("notifying")
    notice = incident_report(stored).split("## Notification")[1].split("##")[0]
    assert (f"people may have been paged: carol's run sent the rollback's notice at {utc(intent.wall)} (wall clock) "
            "and SNS's "
            "answer was lost") in notice, notice
    assert "SNS refused" not in notice and "the finishing run sends it" not in notice, notice

    done = rollback(reason="finish carol's rollback", actor="erin", targets_block=blocks, aws_credentials_block=blocks)

    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    pages = sorted((json.loads(m["Body"]) for m in got), key=lambda body: body["Timestamp"])
    assert [p["Subject"] for p in pages] == [f"Rollback: {service}"] * 2, pages  # carol's did page people
    assert pages[0]["Message"].startswith(f"rollway rolled back {service} ")
    assert pages[1]["Message"].startswith(
        f"This notice may repeat one sent at {utc(intent.wall)} (wall clock) by carol, whose run lost SNS's answer to it.\n\n"
        f"rollway rolled back {service} "), pages[1]["Message"]
    assert any(s.startswith("notified (may repeat the notice carol set out to send at") for s in done.steps)
    assert ledger.get(service).phase is RolloutPhase.ROLLED_BACK


@pytest.mark.parametrize("never", ["EndpointConnectionError", "ConnectTimeoutError"])
def test_on_the_embedded_aws_a_notice_never_sent_stays_failed_and_the_run_again_says_no_repeat(aws, capsys, never):
    """No connection to SNS at all (refused, or not made in time, on every attempt): nothing
    reached it, so it is recorded as ``notice-failed`` as before, and erin's page is a first page.
    The report and status said "SNS refused the notice", as if SNS had answered no: it was never
    reached, and what to fix is the worker's network or endpoint, not a topic, policy or key."""
    import json
    from types import SimpleNamespace

    import botocore.exceptions

    from rollway.aws.ledger import DynamoLedger
    from rollway.cli.ops import print_status
    from tests.flows.moto_env import inbox, saved_blocks
    from tests.flows.test_reports_flow import start_at_five_percent

    blocks = saved_blocks(aws, "lost")
    url = inbox(aws)
    start_at_five_percent(aws)
    service = aws.targets.canary_service
    error = getattr(botocore.exceptions, never)

    def unreachable(request, **_):
        raise error(endpoint_url=request.url, error="connection refused")

    with publishes_failing(unreachable), pytest.raises(RollbackIncomplete, match="notify") as failed:
        rollback(reason="users report 500s on save", actor="carol", targets_block=blocks, aws_credentials_block=blocks)
    assert "may have been paged" not in str(failed.value)
    stored = DynamoLedger(aws.get_client("dynamodb"), aws.targets).get(service)
    assert "notice-failed" in [t.kind for t in stored.history]
    said = str(error(endpoint_url="https://sns", error="connection refused")).split(":")[0]  # botocore's words
    notice = incident_report(stored).split("## Notification")[1].split("##")[0]
    assert f"SNS could not be reached for the notice: {said}" in notice, notice
    print_status(SimpleNamespace(name=service, targets=aws.targets), stored, Weights(stable=100, canary=0), None,
                 limit=10)
    status = " ".join(capsys.readouterr().out.split())
    assert f"SNS could not be reached for the notice: {said}" in status and "nobody was paged by it" in status, status
    assert "SNS refused" not in notice and "SNS refused" not in status

    rollback(reason="finish carol's rollback", actor="erin", targets_block=blocks, aws_credentials_block=blocks)
    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    assert [json.loads(m["Body"])["Message"].startswith(f"rollway rolled back {service} ") for m in got] == [True]


def test_the_rollback_page_says_which_version_users_get_now_and_how_to_read_the_incident_report(monkeypatch):
    # On-call woken by this page asks first which version users get now, and where the evidence is:
    # the page named the stable service without what it runs, and the rollout's id without the
    # command that takes it.
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    rollback(reason="abort", actor="erin")
    (_, page), = env.notifier.messages
    stable = env.deployer.services[env.targets.stable_service].task_definition
    assert (f"Traffic is back at 100% on {env.targets.stable_service}, which runs {stable} "
            f"(read back from the load balancer at {wall_utc(env.wall())}, 0 s after this rollback began: 100/0).") \
        in page, page
    assert f"`rollway report --rollout {first.rollout_id}`" in page and "incident report" in page, page
    assert "`rollway status`" in page, page


def test_the_rollback_page_says_how_much_of_the_traffic_the_canary_took_before_it_moved(monkeypatch):
    # On-call's second question, after which version users get now: how many users were on the one
    # rolled back. The page said only the weights read back (100/0); what the rollback moved the
    # traffic from went to the ledger and the incident report alone.
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    env.router.weights = Weights.canary_at(25)
    rollback(reason="abort", actor="erin")
    (_, page), = env.notifier.messages
    assert ("Before the rollback moved it, the canary took 25% of the traffic (75/25 stable/canary, read from the "
            "load balancer).") in page, page


def test_a_rollback_that_found_the_traffic_on_stable_already_pages_that_the_canary_took_none(monkeypatch):
    # A rollback run again after one that moved the traffic and died before recording its end:
    # "back at 100%" alone read as if this run had just moved users off the canary.
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    env.router.weights = Weights(stable=100, canary=0)
    rollback(reason="abort", actor="erin")
    (_, page), = env.notifier.messages
    assert (f"All of the traffic was on {env.targets.stable_service} already when this rollback first read the "
            "load balancer (100/0 stable/canary): it moved none of it.") in page, page
    assert "the canary took" not in page.lower(), page


def test_a_look_at_stable_failing_once_the_traffic_is_back_still_retires_the_canary_and_pages_the_rollback(
        monkeypatch):
    # The rollback looks at the stable service again once it carries all the traffic (a decommission
    # may have raced it). That look failing (DescribeServices throttled past its retries) stopped the
    # rollback there: the canary kept its tasks and its revision, the bound flags stayed on, and people
    # got a "Rollback FAILED" page, which the README says means the traffic is NOT back.
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    stable, canary = env.targets.stable_service, env.targets.canary_service
    real_describe = env.deployer.describe

    def throttled_once_the_traffic_moved(service):
        if service == stable and env.router.weights == Weights(stable=100, canary=0):
            raise RuntimeError("Rate exceeded")
        return real_describe(service)

    monkeypatch.setattr(env.deployer, "describe", throttled_once_the_traffic_moved)
    with pytest.raises(RollbackIncomplete, match="Rate exceeded") as failed:
        rollback(reason="abort", actor="erin")
    assert env.router.weights == Weights(stable=100, canary=0)
    assert env.deployer.services[canary].desired == 0, "the canary kept its tasks"
    (subject, page), = env.notifier.messages
    assert subject == f"Rollback: {canary}", subject
    assert "Rate exceeded" in page and f"Traffic is back at 100% on {stable}" in page, page
    assert any("Rate exceeded" in step for step in failed.value.failed_steps), failed.value.failed_steps
    record = env.ledger.get(canary)
    assert record.phase is RolloutPhase.ROLLING_BACK  # open: `rollway abort` finishes it
    stopped = record.last_transition("rollback-stopped")
    assert stopped is not None and stopped.to_weights == Weights(stable=100, canary=0), record.history


def test_the_rollback_page_says_when_the_traffic_was_read_back_on_stable(monkeypatch):
    # A page read later (forwarded, an SMS, a chat channel's digest) gave no time at all: when users
    # got off the version rolled back is what on-call sets the canary's logs and metrics against.
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    env.wall = lambda: 1_800_000_000.0
    rollback(reason="abort", actor="erin")
    (_, page), = env.notifier.messages
    assert (f"(read back from the load balancer at {wall_utc(1_800_000_000.0)}, 0 s after this rollback began: "
            "100/0).") in page, page


def test_a_finished_rollback_says_in_its_run_log_what_it_did(monkeypatch, caplog):
    # A person who ran the rollback flow by hand read its log in the Prefect UI: the flow run's lines
    # were its start and its end, nothing of the traffic moved, the canary retired or the notice sent.
    env, first = rolling_back(monkeypatch, FakeLedger(), holder=None, expires_in=0.0)
    t = env.targets
    with caplog.at_level(logging.INFO):
        rollback(reason="abort", actor="erin")
    said = [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs" and "rolled back" in r.getMessage()]
    assert len(said) == 1, [r.getMessage() for r in caplog.records if r.name == "prefect.flow_runs"]
    assert said[0].startswith(f"rolled back {t.canary_service}: "), said
    for step in ("weights 100/0 verified", f"{t.canary_service} scaled to 0 on", "notified"):
        assert step in said[0], said
    assert f"`rollway report --rollout {first.rollout_id}`" in said[0], said
