"""The "Old version decommissioned" page of a run that died between recording the decommission and
paging. On the embedded AWS (DynamoDB ledger, SNS topic read through an SQS inbox) with the Prefect
test harness.

The next run saw the decommission recorded and did nothing: nobody was ever told that the old
version was gone. Whatever looks at the rollout again (the `monitor` flow by hand, a resumed
rollout run, the weekly tick) sends the page late, once, saying why.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from uuid import uuid4

import pytest
from prefect import flow

from flows.monitor import monitor, run_monitor
from flows.progressive import advance, run_progressive
from rollway.approvals import auto_approve
from rollway.clock import ClockSettings
from rollway.decommission_page import PAGED
from rollway.spec import RolloutSpec
from tests.flows.moto_env import in_a_flow_run, inbox, saved_blocks, simulated
from tests.flows.test_canary_moto import read_back
from tests.flows.test_finalize import kinds, promote_by_hand


class Died(BaseException):
    """The run's process dying (a BaseException, as a kill's SystemExit is: nothing catches it)."""


def dies_at_publish(client):
    """The run dies as it publishes (SNS never hears of it) while the returned hook is registered."""

    def die(model, params, **_):
        if model.name == "Publish":
            raise Died("killed while publishing")

    client.meta.events.register("before-parameter-build.*", die)
    return lambda: client.meta.events.unregister("before-parameter-build.*", die)


def promoted(aws, env):
    """A rollout promoted by hand: its record, and the spec it was started with."""
    promote_by_hand(aws, "start", "promote")
    record = env.ledger.get(aws.targets.canary_service)
    return record, RolloutSpec.from_record(record.spec_json)


def decommissioned_while(env, record, spec, restore):
    """A `monitor` run of ``record``'s window, which passes and scales the old service to 0, while a
    hook holds (``restore``: what the hook's register returned, called once the run is over)."""
    try:
        return in_a_flow_run("monitor", lambda: run_monitor(
            env, spec, window_seconds=180, decommission=True, previous_task_definition=record.previous_task_definition,
            stable_desired=2, owner=f"run-{uuid4().hex[:6]}", rollout=record.rollout_id))
    finally:
        restore()


def pages(aws, url: str) -> list[tuple[str, str]]:
    got = aws.get_client("sqs").receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
    for m in got:
        aws.get_client("sqs").delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
    return [(body["Subject"], body["Message"]) for body in map(json.loads, (m["Body"] for m in got))]


@flow
def progressive_on(env, spec):
    return run_progressive(env, spec, auto_approve("alice"), owner=f"run-{uuid4().hex[:6]}", phased=True)


@flow
def advance_on(env):
    return advance(env, auto_approve("alice"), owner=f"run-{uuid4().hex[:6]}")


class _PacedSession:
    """The run's session from its blocks (its own clients), whose environments read on ``clock``."""

    def __init__(self, session, clock) -> None:
        self._session, self._clock = session, clock

    def __getattr__(self, name):
        return getattr(self._session, name)

    def environment(self, clock, **options):
        return dataclasses.replace(self._session.environment(clock, **options), clock=self._clock)


def monitor_reads_on(monkeypatch, env) -> None:
    """The `monitor` flow, given blocks, acts through its own clients but reads on ``env``'s
    PacedClock. On the clock it builds from its ``clock`` settings its looks ran ahead of a
    simulator that lagged under load: they read periods not published yet, the window was "not
    verified", and its "Decommission skipped" page (to a topic a test deleted) failed the run."""
    import flows.monitor

    loaded = flows.monitor.load_session
    monkeypatch.setattr(flows.monitor, "load_session", lambda *a, **k: _PacedSession(loaded(*a, **k), env.clock))


def monitor_by_hand(aws, env, spec):
    blocks = saved_blocks(aws)
    # A short window: the late page goes out when it opens; what the window judges is not the point here.
    clock = ClockSettings(speed=env.clock.speed, anchor=env.clock.anchor)  # the simulator's
    return monitor(spec=spec.model_dump(mode="json"), window_seconds=60, targets_block=blocks,
                   aws_credentials_block=blocks, clock=clock.model_dump(mode="json"))


RESUMERS = {
    "monitor": monitor_by_hand,
    "progressive_rollout": lambda aws, env, spec: progressive_on(env, spec),
    "advance_phase": lambda aws, env, spec: advance_on(env),
}


# Who sends the late page, as its `decommission-paged` entry names it: the run's own actor.
SENDERS = {"monitor": "monitor", "progressive_rollout": "operator", "advance_phase": "schedule"}


@pytest.mark.parametrize("resumer", RESUMERS)
def test_a_decommission_whose_run_died_before_paging_is_paged_late_once(aws, resumer, caplog):
    t = aws.targets
    url = inbox(aws)
    with simulated(aws, 0.001) as (env, _):
        record, spec = promoted(aws, env)
        # The window passes and scales the old service to 0; the run dies as it publishes the page.
        with pytest.raises(Died):
            decommissioned_while(env, record, spec, dies_at_publish(aws.get_client("sns")))
        assert read_back(aws)[1].desired == 0, "the old service was decommissioned"
        assert kinds(aws)[-1] == "decommission", kinds(aws)
        assert pages(aws, url) == [], "nobody was paged"

        with caplog.at_level(logging.INFO):
            RESUMERS[resumer](aws, env, spec)
        said = [r.getMessage() for r in caplog.records]
        # A run that pages must not say, first, that it pages nothing.
        assert not any("pages nothing" in m or "nothing was scaled, recorded or paged" in m for m in said), said
        # Nor that the page was never sent: the ledger cannot tell this run from one that paged and
        # died before recording it (a window that finds the decommission done logs it owed).
        assert not any("never sent" in m for m in said), said
        sent = pages(aws, url)
        late = [(s, m) for s, m in sent if s.startswith("Old version decommissioned")]
        assert [s for s, _ in late] == [f"Old version decommissioned (late): {t.stable_service}"], sent
        message = late[0][1]
        assert ("This page is late, or a second one: the run that decommissioned recorded no page sent: it died "
                "before paging") in message, message
        assert f"{t.stable_service} was scaled to 0 at" in message and record.rollout_id in message, message
        paged = env.ledger.get(t.canary_service).last_transition(PAGED)
        assert paged is not None and paged.message_id, kinds(aws)
        assert paged.actor == SENDERS[resumer], paged

        # Recorded: the next look pages nobody again.
        RESUMERS[resumer](aws, env, spec)
        assert not [s for s, _ in pages(aws, url) if s.startswith("Old version decommissioned")]
    assert kinds(aws).count(PAGED) == 1, kinds(aws)


def test_a_page_sns_refuses_leaves_the_monitoring_done_and_the_page_owed_with_why(aws, capsys, monkeypatch):
    """SNS refused the decommission's page (a deleted topic, a role without sns:Publish): the whole
    `monitor` run failed on AWS's refusal, as if the window had not been watched, and the ledger
    said only that the run "died before paging". The window is done and recorded, the page owed
    with SNS's answer (in `rollway status` and the late page), and the run ends Failed saying so
    in one sentence; the next run sends the page late."""
    import rollway.cli.ops as ops
    from rollway.decommission_page import PAGE_REFUSED

    t = aws.targets
    with simulated(aws, 0.001) as (env, _):
        promote_by_hand(aws, "start", "promote")
        monitor_reads_on(monkeypatch, env)  # its window verified whatever the machine's load
        record = env.ledger.get(t.canary_service)
        spec = RolloutSpec.from_record(record.spec_json)
        blocks = saved_blocks(aws)
        clock = ClockSettings(speed=env.clock.speed, anchor=env.clock.anchor)
        # The run's own clients (from its blocks) are not the test's: the topic itself is gone.
        aws.get_client("sns").delete_topic(TopicArn=aws.topology.topic_arn)
        state = monitor(spec=spec.model_dump(mode="json"), window_seconds=180, decommission=True,
                        targets_block=blocks, aws_credentials_block=blocks, clock=clock.model_dump(mode="json"),
                        return_state=True)
        assert state.is_failed(), state
        message = state.message or ""
        assert "\n" not in message and "decommission" in message and f"topic '{t.alert_topic}' not found" in message, message
        assert "page" in message and "owed" in message, message
        assert read_back(aws)[1].desired == 0, "the old service was decommissioned"
        history = env.ledger.get(t.canary_service).history
        assert [t.kind for t in history][-2:] == ["decommission", PAGE_REFUSED], [t.kind for t in history]
        assert f"topic '{t.alert_topic}' not found" in (history[-1].comment or ""), history[-1]
        aws.get_client("sns").create_topic(Name=t.alert_topic)  # the topic is back, with its subscriber
        url = inbox(aws)
        assert pages(aws, url) == [], "nobody was paged"

        assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
        said = " ".join(capsys.readouterr().out.split())
        assert f"the \"Old version decommissioned\" page of {t.stable_service} is not recorded as sent (SNS refused it" in said
        assert f"topic '{t.alert_topic}' not found" in said and "died before paging" not in said, said

        monitor_by_hand(aws, env, spec)
        late = [m for s, m in pages(aws, url) if s.startswith("Old version decommissioned")]
        assert len(late) == 1 and "This page is late: SNS refused it" in late[0], late
    assert kinds(aws).count(PAGED) == 1, kinds(aws)


def sns_refuses_publish(client, code: str, message: str):
    """SNS answers every Publish with ``code``, while the returned hook is registered."""
    from botocore.exceptions import ClientError

    def refuse(model, params, **_):
        if model.name == "Publish":
            raise ClientError({"Error": {"Code": code, "Message": message}}, "Publish")

    client.meta.events.register("before-parameter-build.*", refuse)
    return lambda: client.meta.events.unregister("before-parameter-build.*", refuse)


def test_a_late_page_sns_refuses_too_is_recorded_and_the_one_sent_says_why_it_was_owed(aws, capsys, caplog):
    """A late page SNS refused as well was only logged: status and the late page went on giving the
    first refusal (a topic since mended) as why nobody was told. It is recorded as the first was,
    with SNS's newest answer. And a rollout run that sent the page late said its run "died before
    paging" in its result while SNS had refused it."""
    import rollway.cli.ops as ops
    from rollway.decommission_page import PAGE_REFUSED

    t = aws.targets
    with simulated(aws, 0.001) as (env, _):
        promote_by_hand(aws, "start", "promote")
        record = env.ledger.get(t.canary_service)
        spec = RolloutSpec.from_record(record.spec_json)
        aws.get_client("sns").delete_topic(TopicArn=aws.topology.topic_arn)
        in_a_flow_run("monitor", lambda: run_monitor(
            env, spec, window_seconds=180, decommission=True, previous_task_definition=record.previous_task_definition,
            stable_desired=2, owner=f"run-{uuid4().hex[:6]}", rollout=record.rollout_id))
        assert kinds(aws)[-2:] == ["decommission", PAGE_REFUSED], kinds(aws)
        aws.get_client("sns").create_topic(Name=t.alert_topic)  # the topic is back; now the key is off
        url = inbox(aws)

        restore = sns_refuses_publish(aws.get_client("sns"), "KMSDisabled", "the topic's KMS key is disabled")
        try:
            progressive_on(env, spec)
        finally:
            restore()
        assert pages(aws, url) == [], "nobody was paged"
        newest = env.ledger.get(t.canary_service).history[-1]
        assert newest.kind == PAGE_REFUSED and newest.actor == "operator", kinds(aws)
        assert "the topic's KMS key is disabled" in (newest.comment or ""), newest
        blocks = saved_blocks(aws)
        assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
        said = " ".join(capsys.readouterr().out.split())
        # The owed page's line gives the newest answer (the history below it lists both refusals).
        owed = said.split("is not recorded as sent (SNS refused it: ", 1)[-1].split("the next run that looks", 1)[0]
        assert "the topic's KMS key is disabled" in owed and "not found" not in owed, said

        with caplog.at_level(logging.INFO):
            result = progressive_on(env, spec)
        late = [m for s, m in pages(aws, url) if s.startswith("Old version decommissioned")]
        assert len(late) == 1 and "This page is late: SNS refused it: " in late[0], late
        assert "sent late (SNS refused it: " in result.reason and "KMS key is disabled" in result.reason, result.reason
        assert not any("died before paging" in r.getMessage() for r in caplog.records), result.reason
    assert kinds(aws).count(PAGED) == 1, kinds(aws)


def ledger_refuses_paged(client):
    """DynamoDB refuses every write of a ``decommission-paged`` entry, while the returned hook is registered."""
    from botocore.exceptions import ClientError

    def refuse(model, params, **_):
        if model.name == "UpdateItem" and PAGED in json.dumps(params, default=str):
            raise ClientError({"Error": {"Code": "InternalServerError", "Message": "the table is unavailable"}},
                              "UpdateItem")

    client.meta.events.register("before-parameter-build.*", refuse)
    return lambda: client.meta.events.unregister("before-parameter-build.*", refuse)


def test_a_page_sent_whose_record_the_ledger_refused_is_not_said_never_sent(aws, capsys):
    """The decommission's page went out and DynamoDB refused the ``decommission-paged`` entry after
    it: the page stays owed (at least once), but `rollway status` said it "was never sent (the run
    that decommissioned died before paging)", and the late page, a second one, that it was late
    because that run died. No run died, and people had been paged: neither text may claim it."""
    import rollway.cli.ops as ops

    t = aws.targets
    url = inbox(aws)
    with simulated(aws, 0.001) as (env, _):
        record, spec = promoted(aws, env)
        decommissioned_while(env, record, spec, ledger_refuses_paged(aws.get_client("dynamodb")))
        assert kinds(aws)[-1] == "decommission", kinds(aws)
        assert [s for s, _ in pages(aws, url) if s.startswith("Old version decommissioned")], "people were paged"

        blocks = saved_blocks(aws)
        assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
        said = " ".join(capsys.readouterr().out.split())
        assert "never sent" not in said and "decommissioned died before paging" not in said, said
        assert (f"whether the \"Old version decommissioned\" page of {t.stable_service} was sent is not known "
                "(the run that decommissioned recorded no page sent") in said, said
        assert "again if it went out" in said, said

        progressive_on(env, spec)
        late = [m for s, m in pages(aws, url) if s.startswith("Old version decommissioned")]
        assert len(late) == 1 and "This page is late, or a second one: the run that decommissioned recorded no " \
                                  "page sent" in late[0], late
        assert "decommissioned died before paging" not in late[0], late
    assert kinds(aws).count(PAGED) == 1, kinds(aws)


def test_a_late_page_sent_after_a_refusal_whose_record_the_ledger_refused_is_not_said_never_sent(aws, capsys):
    """SNS refused the decommission's page (recorded); a later run sent it late, and DynamoDB refused
    its ``decommission-paged`` entry. The page stays owed (at least once), but `rollway status` said
    it "was never sent (SNS refused it ...)" of a page people had received: the refusal is only the
    newest answer recorded, and no later run's page is."""
    import rollway.cli.ops as ops
    from rollway.decommission_page import PAGE_REFUSED

    t = aws.targets
    url = inbox(aws)
    with simulated(aws, 0.001) as (env, _):
        record, spec = promoted(aws, env)
        decommissioned_while(env, record, spec, sns_refuses_publish(
            aws.get_client("sns"), "AuthorizationError", "not authorized to perform SNS:Publish"))
        assert kinds(aws)[-2:] == ["decommission", PAGE_REFUSED], kinds(aws)
        restore = ledger_refuses_paged(aws.get_client("dynamodb"))
        try:
            progressive_on(env, spec)
        finally:
            restore()
        assert kinds(aws)[-1] == PAGE_REFUSED, kinds(aws)
        assert [s for s, _ in pages(aws, url) if s.startswith("Old version decommissioned")], "people were paged"

        blocks = saved_blocks(aws)
        assert ops.status(targets_block=blocks, credentials_block=blocks) == 0
        said = " ".join(capsys.readouterr().out.split())
        assert "never sent" not in said, said
        assert (f"the \"Old version decommissioned\" page of {t.stable_service} is not recorded as sent (SNS refused "
                "it: ") in said and "not authorized to perform SNS:Publish" in said, said
