"""A pause the Prefect API refuses fails the run with an error that holds no API key.

httpx's error holds its request, and the Prefect client's request carries ``Authorization:
Bearer <API key>`` on Prefect Cloud: the run failed with it, and Prefect pickled it, key and all,
into its result storage when results are persisted.
"""

from __future__ import annotations

import cloudpickle
import httpx
from prefect import flow
from prefect.exceptions import PrefectHTTPStatusError

import flows.approvals
from flows.approvals import prefect_approver
from rollway.api_error import ApiError
from rollway.decide import Pause
from rollway.spec import Approvals

KEY = "pnu_notarealkeybutsecretall0fthesame"


@flow(name="approval-the-api-refuses")
def pauses_once() -> None:
    approver = prefect_approver(Approvals(timeout_seconds=120, on_timeout="rollback"), poll_interval=1)
    approver(Pause(reason="approval needed before 25%", cause="approval", stage_index=1), "summary")


def test_a_pause_the_api_refuses_fails_the_run_with_its_status_and_url_but_not_the_api_key(monkeypatch):
    def forbidden(client, state, run_id, leaving=None):
        request = httpx.Request("POST", f"https://api.prefect.cloud/api/flow_runs/{run_id}/set_state?x=1",
                                headers={"Authorization": f"Bearer {KEY}"})
        raise PrefectHTTPStatusError.from_httpx_error(httpx.HTTPStatusError(
            "Client error '403 Forbidden'", request=request, response=httpx.Response(403, request=request)))

    monkeypatch.setattr(flows.approvals, "propose_state", forbidden)
    state = pauses_once(return_state=True)
    assert state.is_failed(), state
    err = state.result(raise_on_failure=False)
    assert KEY.encode() not in cloudpickle.dumps(err)
    assert isinstance(err, ApiError), repr(err)
    assert (err.status_code, err.method) == (403, "POST")
    assert err.url.startswith("https://api.prefect.cloud/api/flow_runs/") and err.url.endswith("/set_state"), err.url
    assert "403 Forbidden" in str(err), str(err)
    kept = cloudpickle.loads(cloudpickle.dumps(err))
    assert (kept.status_code, str(kept)) == (403, str(err))
