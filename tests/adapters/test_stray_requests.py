"""A request a test's leftover thread makes after the next test's reset: why it broke that test,
and how the tests' fixture (tests/stray_requests.py) finds such threads to wait for."""

from __future__ import annotations

import threading

import boto3
import pytest

from tests import stray_requests
from tests.moto_state import MotoState


def _sqs(endpoint_url: str):
    return boto3.client("sqs", endpoint_url=endpoint_url, region_name="us-west-2",
                        aws_access_key_id="testing", aws_secret_access_key="testing")


def test_any_request_after_a_reset_makes_restoring_a_provisioned_account_refuse(aws, embedded_aws):
    """moto's server looks each request's access key up in its IAM backend: one request of any
    service between a reset and the restore leaves IAM holding state, and the restore refuses."""
    saved = MotoState()
    embedded_aws.reset()
    _sqs(embedded_aws.endpoint_url).list_queues()
    with pytest.raises(RuntimeError, match="moto's iam holds state"):
        saved.restore()


def test_requests_made_while_a_provisioned_account_is_put_back_wait_for_it_and_find_it(aws, embedded_aws):
    """The tests' fixture resets and restores under moto's backend lock: a request sent meanwhile (by
    a thread or a process no test's guard can name) neither makes the restore refuse nor lands in
    an empty account."""
    sqs = _sqs(embedded_aws.endpoint_url)
    sqs.create_queue(QueueName="kept-by-the-restore")
    saved = MotoState()
    stop, seen, failures = threading.Event(), [], []

    def meanwhile() -> None:
        client = _sqs(embedded_aws.endpoint_url)
        while not stop.is_set():
            try:
                seen.append(len(client.list_queues().get("QueueUrls", [])))
            except Exception as err:  # noqa: BLE001 - any failure is the test's finding
                failures.append(err)

    thread = threading.Thread(target=meanwhile, name="requests-meanwhile")
    thread.start()
    try:
        for _ in range(200):
            saved.reset_and_restore()
    finally:
        stop.set()
        thread.join(30)
    assert not failures
    assert seen and min(seen) >= 1, "a request found the account empty between the reset and the restore"
    assert any("kept-by-the-restore" in url for url in sqs.list_queues()["QueueUrls"])


def test_a_thread_started_by_a_test_that_called_the_embedded_aws_is_found_and_waited_for(embedded_aws):
    before = set(threading.enumerate())
    called, release = threading.Event(), threading.Event()

    def leftover() -> None:
        _sqs(embedded_aws.endpoint_url).list_queues()
        called.set()
        release.wait(10)

    idle = threading.Thread(target=release.wait, args=(10,), name="calls-nothing")
    caller = threading.Thread(target=leftover, name="leftover-read")
    idle.start()
    caller.start()
    assert called.wait(10)
    try:
        # Only the thread that called AWS: not the test's own, not one that made no call.
        assert stray_requests.senders_started_since(before) == [caller]
        assert stray_requests.wait_for([caller], 0.2) == [caller]
    finally:
        release.set()
    assert stray_requests.wait_for([caller], 10) == []
    assert stray_requests.senders_started_since(before) == []
    idle.join(10)


def test_a_thread_running_before_the_test_began_is_not_the_tests(embedded_aws):
    called, release = threading.Event(), threading.Event()

    def earlier() -> None:
        _sqs(embedded_aws.endpoint_url).list_queues()
        called.set()
        release.wait(10)

    thread = threading.Thread(target=earlier, name="earlier-read")
    thread.start()
    try:
        assert called.wait(10)
        assert stray_requests.senders_started_since(set(threading.enumerate())) == []
    finally:
        release.set()
        thread.join(10)
