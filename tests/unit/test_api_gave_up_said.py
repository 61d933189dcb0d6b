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


def test_a_request_unanswered_to_its_bound_says_its_url_without_password_or_query(monkeypatch):
    """The same for a request no try of which was answered (the API away): its error quoted the URL
    with its password and query."""
    from flows import approvals

    asked = httpx.Request("GET", "http://rollway:s3cr3t@127.0.0.1:4200/api/flow_runs/1?token=abc",
                          extensions={approvals._FIRST_SENT: 100.0, approvals._MOST: 60.0})
    monkeypatch.setattr(approvals, "_request_clock", lambda: 162.5)
    try:
        approvals._request_sent(asked)
    except approvals.RequestGaveUp as err:
        said = str(err)
    else:
        raise AssertionError("a request past its bound was sent again")
    assert said == ("the Prefect API did not answer GET http://rollway:***@127.0.0.1:4200/api/flow_runs/1 in 63 s of "
                    "tries; gave up, as one request is given at most 60 s"), said
