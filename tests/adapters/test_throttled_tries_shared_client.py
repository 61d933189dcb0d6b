"""rollway.aws.errors.throttled_tries on a client two reads share, each in its own thread: each
read's record holds its own tries alone. The record is kept per operation (an operation's tries
are dropped once a try of it gets another answer, and it is in flight from its send to its
answer): another read's answer to the same operation, on the same client, must not drop this
read's throttled tries, nor take its try still waiting for an answer for one answered."""
from __future__ import annotations

import threading

import boto3
from botocore.awsrequest import AWSResponse
from botocore.config import Config
from botocore.exceptions import ClientError

from rollway.aws.errors import throttled_tries
from tests.botocore_events import on_operation

ELB_THROTTLED = (b'<ErrorResponse xmlns="http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/">'
                 b"<Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message>"
                 b"</Error><RequestId>1</RequestId></ErrorResponse>")


class _Body:
    def stream(self, **_):
        yield ELB_THROTTLED


def test_two_reads_sharing_a_client_in_two_threads_each_record_their_own_tries(aws):
    client = boto3.client("elbv2", endpoint_url=aws.endpoint_url, region_name=aws.targets.region,
                          aws_access_key_id="testing", aws_secret_access_key="testing",
                          config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    first = threading.current_thread()  # replaced by the first read's thread
    held, answered, released = threading.Event(), threading.Event(), threading.Event()
    records: dict[str, tuple[list, set]] = {}
    sent: list[str] = []
    failures: list[BaseException] = []

    def try_(request, **_):
        if threading.current_thread() is not first:
            return None  # the second read's: answered by the embedded AWS
        sent.append("first")
        if len(sent) == 1:
            return AWSResponse(request.url, 400, {"Content-Type": "text/xml"}, _Body())
        held.set()  # its next try: in flight until the second read has been answered
        released.wait(30)
        return None

    def first_read() -> None:
        try:
            with throttled_tries(client, lambda: 0.0) as record:
                records["first"] = record
                try:
                    client.describe_load_balancers()
                except ClientError:
                    pass  # throttled: recorded, and read again
                client.describe_load_balancers()
        except BaseException as err:  # noqa: BLE001 - failed in the test's thread
            failures.append(err)

    def second_read() -> None:
        try:
            held.wait(30)
            with throttled_tries(client, lambda: 0.0) as record:
                records["second"] = record
                client.describe_load_balancers()
                records["second, answered"] = (list(record[0]), set(record[1]))
        except BaseException as err:  # noqa: BLE001
            failures.append(err)
        finally:
            answered.set()

    with on_operation(client, "before-send", try_, operation="DescribeLoadBalancers"):
        reader = threading.Thread(target=first_read)
        first = reader
        other = threading.Thread(target=second_read)
        reader.start(), other.start()
        try:
            assert answered.wait(30)
            tries, in_flight = records["first"]
            seen = [(t.operation, t.code) for t in tries], set(in_flight)
        finally:
            released.set()
            reader.join(30), other.join(30)
    assert failures == [], failures
    assert records["second, answered"] == ([], set()), records["second, answered"]
    # The second read answered DescribeLoadBalancers: the first's throttled try, and its try in flight, stand.
    assert seen == ([("DescribeLoadBalancers", "Throttling")], {"DescribeLoadBalancers"}), seen
