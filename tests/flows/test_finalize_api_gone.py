"""`rollway finalize` runs its flow in this process: an API gone before the flow starts is said in a line."""

from __future__ import annotations

import socket

import flows.finalize
import rollway.cli.ops as ops
from rollway.fakes import FakeLedger, FakeRouter
from rollway.targets import Targets


def test_a_finalize_whose_flow_finds_the_prefect_api_gone_says_so_in_one_line(monkeypatch, capsys):
    """The API answered (or was not needed for) the command's ledger read, then went away before the
    finalize flow started: Prefect's flow engine says so as a RuntimeError ("Failed to reach API at
    ..."), its connection error behind it, which no command's `reporting` caught: a traceback."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from rollway.cli.finalize import finalize

    service = ops.Service(targets=Targets(), targets_block=None, credentials_block=None, ledger=FakeLedger(),
                          router=FakeRouter())
    monkeypatch.setattr(ops, "connect", lambda *a: service)
    real_finalize = flows.finalize.finalize

    with socket.socket() as nobody:  # bound, never listening: every connection to it is refused
        nobody.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{nobody.getsockname()[1]}/api"

        def api_gone(**kwargs):
            with temporary_settings({PREFECT_API_URL: url}):
                return real_finalize(**kwargs)

        monkeypatch.setattr(flows.finalize, "finalize", api_gone)
        code = finalize(actor="carol", targets_block=None, credentials_block=None)
    out, err = capsys.readouterr()
    assert code == 1, err
    assert err.startswith("error: cannot reach the Prefect API ("), err
    assert "is `rollway up` running" in err, err
    assert err.count("\n") == 1 and "Traceback" not in err + out, err
