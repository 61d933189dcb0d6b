"""A block the Prefect API refuses to give fails the run with an error that holds no API key.

httpx's error holds its request, and the Prefect client's request carries ``Authorization:
Bearer <API key>`` on Prefect Cloud: a 401/403/5xx reading the run's targets, credentials or the
validation spec's Secret block failed the run with it, and Prefect pickled it, key and all, into
its result storage when results are persisted.
"""

from __future__ import annotations

import traceback

import cloudpickle
import httpx
import pytest
from prefect.blocks.system import Secret
from prefect.exceptions import PrefectHTTPStatusError
from prefect_aws import AwsCredentials

from blocks.targets import RollwayTargets
from flows.env import load_credentials, load_targets
from flows.validate import _authorization
from rollway.api_error import ApiError

KEY = "pnu_notarealkeybutsecretall0fthesame"


def _refused(cls, name, *args, **kwargs):
    request = httpx.Request("GET", f"https://api.prefect.cloud/api/block_documents/name/{name}?include_secrets=true",
                            headers={"Authorization": f"Bearer {KEY}"})
    raise PrefectHTTPStatusError.from_httpx_error(httpx.HTTPStatusError(
        "Client error '403 Forbidden'", request=request, response=httpx.Response(403, request=request)))


@pytest.mark.parametrize("block, read", [
    (RollwayTargets, lambda: load_targets("edit-targets")),
    (AwsCredentials, lambda: load_credentials("edit-aws", "us-west-2")),
    (Secret, lambda: _authorization("edit-api-token")),
], ids=["targets", "credentials", "secret"])
def test_a_block_the_api_refuses_fails_with_its_status_and_url_but_not_the_api_key(monkeypatch, block, read):
    monkeypatch.setattr(block, "load", classmethod(_refused))
    with pytest.raises(Exception) as raised:
        read()
    err = raised.value
    assert KEY.encode() not in cloudpickle.dumps(err)  # what a failed run's persisted result holds
    assert isinstance(err, ApiError), repr(err)
    assert (err.status_code, err.method) == (403, "GET")
    assert err.url.startswith("https://api.prefect.cloud/api/block_documents/name/edit-"), err.url
    assert "403 Forbidden" in str(err), str(err)


def test_the_password_a_prefect_api_url_carries_is_kept_out_of_the_error(monkeypatch):
    """A server behind basic auth is reached as ``https://<user>:<password>@host/api``: httpx's
    error quotes that URL, and the run's persisted error held the password instead of the key."""
    def refused(cls, name, *args, **kwargs):
        request = httpx.Request("GET", f"https://ops:{KEY}@prefect.internal/api/block_documents/name/{name}")
        raise PrefectHTTPStatusError.from_httpx_error(httpx.HTTPStatusError(
            f"Server error '503 Service Unavailable' for url '{request.url}'", request=request,
            response=httpx.Response(503, request=request)))

    monkeypatch.setattr(RollwayTargets, "load", classmethod(refused))
    with pytest.raises(ApiError) as raised:
        load_targets("edit-targets")
    err = raised.value
    assert KEY.encode() not in cloudpickle.dumps(err)
    assert err.url == "https://prefect.internal/api/block_documents/name/edit-targets", err.url
    assert "for url 'https://ops:***@prefect.internal/api/block_documents/name/edit-targets'" in str(err), str(err)
    # As a failed run's log prints it: the error with its causes.
    logged = "".join(traceback.format_exception(err))
    assert KEY not in logged and "https://ops:***@prefect.internal/" in logged, logged


def test_a_token_in_the_query_of_the_url_asked_is_kept_out_of_the_error():
    """The error's ``url`` was said without its query, its message with it: a token sent as a query
    parameter (a presigned URL's signature) was kept in the run's persisted error all the same."""
    request = httpx.Request("GET", f"https://ops:{KEY}@prefect.internal/api/flow_runs/1?token={KEY}#top")
    err = ApiError.of(httpx.HTTPStatusError(f"Client error '403 Forbidden' for url '{request.url}'",
                                            request=request, response=httpx.Response(403, request=request)))
    assert KEY.encode() not in cloudpickle.dumps(err)
    assert err.url == "https://prefect.internal/api/flow_runs/1#top", err.url
    assert str(err) == "Client error '403 Forbidden' for url 'https://ops:***@prefect.internal/api/flow_runs/1#top'", \
        str(err)


@pytest.mark.parametrize("block, names", [(RollwayTargets, ("edit-targets", None)), (AwsCredentials, (None, "edit-aws"))],
                         ids=["targets", "credentials"])
def test_a_command_whose_block_read_the_api_refuses_says_the_api_not_a_traceback(monkeypatch, capsys, block, names):
    """A command is no run: nothing of it is pickled, and its block reads' refusals are said as the
    Prefect API's, as every other request's of the command, in one line."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from rollway.cli.flags import _open_store
    from rollway.cli.ops import load_account, reporting

    monkeypatch.setattr(block, "load", classmethod(_refused))
    with temporary_settings(updates={PREFECT_API_URL: "http://127.0.0.1:9/api"}):
        assert reporting(lambda: load_account(*names) and 0)() == 1
        with pytest.raises(SystemExit) as stopped:
            _open_store(*names)
    assert stopped.value.code == 1
    said = capsys.readouterr().err
    assert said.count("error: cannot reach the Prefect API (http://127.0.0.1:9/api): Client error '403 Forbidden'") == 2, said
