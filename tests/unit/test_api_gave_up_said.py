"""The error a pause's request to the Prefect API gives up with: what a person reads in the run's log
and state message."""

import httpx

from flows.approvals import _gave_up


def test_a_request_given_up_on_says_its_url_without_password_or_query_and_its_seconds_a_half_up():
    """A Prefect API behind basic auth is reached as ``http://<user>:<password>@host``: the error of a
    request given up on quoted the URL asked, password and query (a token sent as a parameter) and all,
    and said 2.5 s of tries as "2 s" where every other line says "3 s"."""
    asked = httpx.Request("GET", "http://rollway:s3cr3t@127.0.0.1:4200/api/flow_runs/1?token=abc")
    said = str(_gave_up(httpx.Response(503, request=asked), 2.5))
    assert said == ("the Prefect API answered 503 to GET http://rollway:***@127.0.0.1:4200/api/flow_runs/1 for 3 s of "
                    "tries; gave up, as one request is given at most 60 s"), said
