"""flows.env.runs_in_states reads every page of runs from the Prefect API (the test harness).

finalize --unrecorded filters those runs by service, and the CLI by targets block: a run the
pages miss is a run nobody waits for.

The harness's server answers pages of 200 runs; these tests ask it for pages of PAGE, as a server
set up with PREFECT_API_DEFAULT_LIMIT=20 answers: the same paging, for a tenth of the runs (two
hundred runs made and cancelled cost half a minute a test).
"""

from __future__ import annotations

from typing import Iterator

import pytest
from prefect import flow
from prefect.client.orchestration import get_client
from prefect.client.schemas.objects import StateType
from prefect.states import Cancelled, Running

from flows.env import runs_in_states

FLOW = "run-queries"
PAGE = 20


@flow(name=FLOW)
def some_flow() -> None:
    pass


@pytest.fixture
def running_runs() -> Iterator[tuple]:
    """2 * PAGE + 1 running runs of FLOW, on a client whose server answers pages of PAGE runs when
    no limit is asked for; cancelled afterwards."""
    with get_client(sync_client=True) as client:
        created = [client.create_flow_run(some_flow, state=Running()).id for _ in range(2 * PAGE + 1)]
        real = client.read_flow_runs
        client.read_flow_runs = lambda *, limit=None, **kwargs: real(limit=limit or PAGE, **kwargs)
        try:
            yield client, created
        finally:
            client.read_flow_runs = real
            for run_id in created:
                client.set_flow_run_state(run_id, Cancelled(message="test over"), force=True)


def read_while_runs_end(client, ending: int) -> tuple[list, list]:
    """``runs_in_states`` while the first ``ending`` runs of its first page end just after that
    page is read; the runs it returns, and the pages it read."""
    real = client.read_flow_runs
    pages: list = []

    def read_flow_runs(**kwargs):
        page = real(**kwargs)
        pages.append(page)
        if len(pages) == 1:
            for run in page[:ending]:
                client.set_flow_run_state(run.id, Cancelled(message="finished meanwhile"), force=True)
        return page

    client.read_flow_runs = read_flow_runs
    try:
        runs = runs_in_states(client, [FLOW], [StateType.RUNNING])
    finally:
        client.read_flow_runs = real
    return runs, pages


def test_a_run_ending_between_two_pages_hides_no_other_run(running_runs):
    """A run of the first page ends while the next is asked for: the rest of the list moves up by
    one, and with plain offsets the run that moved onto the first page's end was never read."""
    client, created = running_runs
    runs, pages = read_while_runs_end(client, 1)
    ended = pages[0][0].id
    assert set(created) - {ended} <= {run.id for run in runs}
    assert len(runs) == len({run.id for run in runs}), "a run shows twice"


def test_a_server_with_a_smaller_page_is_read_to_the_end(running_runs):
    """A server refuses any limit larger than its page size (422): asking for pages of 200 (the
    default page) failed every query on a server of 100, while asking with none worked."""
    client, created = running_runs
    real = client.read_flow_runs

    def as_a_server_of_page_answers(*, limit=None, **kwargs):
        if limit is not None and limit > PAGE:
            raise RuntimeError(f"422 Invalid limit: must be less than or equal to {PAGE} (asked {limit})")
        return real(limit=limit, **kwargs)

    client.read_flow_runs = as_a_server_of_page_answers
    try:
        runs = runs_in_states(client, [FLOW], [StateType.RUNNING])
    finally:
        client.read_flow_runs = real
    assert set(created) <= {run.id for run in runs}


def test_many_runs_ending_between_two_pages_hide_no_other_run(running_runs):
    """Most of the first page's runs end while the next is asked for: more than any fixed overlap
    between pages re-reads, so the runs that moved up past the overlap were never read."""
    client, created = running_runs
    ending = PAGE * 7 // 10
    runs, pages = read_while_runs_end(client, ending)
    assert len(pages[0]) == PAGE
    ended = {run.id for run in pages[0][:ending]}
    missed = set(created) - ended - {run.id for run in runs}
    assert not missed, f"{len(missed)} running runs were never read"
