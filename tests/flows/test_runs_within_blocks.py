"""The query for a flow's runs not ended reads each run's targets block: an API that refuses that
read stops the query as any of its other requests, named with its address and setting."""

from __future__ import annotations

from types import SimpleNamespace
from uuid import uuid4

import httpx
import pytest


def test_a_targets_block_read_the_api_refuses_stops_the_runs_query_naming_the_api(monkeypatch):
    import flows.env
    from blocks.targets import RollwayTargets
    from flows.env import CANARY_FLOW
    from flows.finalize import PrefectApiFailed, runs_within
    from rollway.targets import Targets

    other = SimpleNamespace(name="canary-other", id=uuid4(), parameters={"targets_block": "other-targets"},
                            state=None)
    monkeypatch.setattr(flows.env, "runs_in_states", lambda client, names, states: [other])

    def refused(cls, name, *args, **kwargs):
        request = httpx.Request("GET", f"http://127.0.0.1:4200/api/block_documents/name/{name}")
        raise httpx.HTTPStatusError("Server error '503 Service Unavailable'", request=request,
                                    response=httpx.Response(503, request=request))

    monkeypatch.setattr(RollwayTargets, "load", classmethod(refused))
    with pytest.raises(PrefectApiFailed, match=r"^the Prefect API at \S+ \(PREFECT_API_URL\) answered 503 "
                                               r"Service Unavailable$"):
        runs_within(CANARY_FLOW, Targets(), 5.0, starting_within_seconds=60)
