"""A bound a person gave, said as given where a stop quotes it: ``:g`` said 100.0001 s "100" (less
than the wait had) and 1234567 s "1.23457e+06", a figure nobody gave."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest


@pytest.mark.parametrize(("seconds", "said"), [(100.0001, "100.0001"), (1234567.0, "1234567"), (600.0, "600")])
def test_an_abort_whose_stable_service_was_not_steady_in_time_asks_for_more_than_the_wait_as_given(seconds, said):
    from rollway.aws.errors import ServiceNotStable
    from rollway.cli.ops import _finish_after

    failed = ServiceNotStable(["edit-stable"], seconds, "edit-stable runs 1 of 2 tasks")
    advice = _finish_after(failed, SimpleNamespace(targets=SimpleNamespace(stable_service="edit-stable")), "r-1")
    assert f"--param scale_timeout_seconds=<seconds, more than {said}>`" in advice, advice


@pytest.mark.parametrize("seconds", [100.0001, 30.0])
def test_finalize_names_the_setting_of_a_read_back_given_up_on_once(monkeypatch, seconds):
    """The read-back's own words name the setting beside the figure: finalize found them by ``:g``'s
    figure, and with the figure said as given it named the setting a second time after them."""
    import flows.finalize as finalize
    from rollway.bounds import seconds_said
    from rollway.deadline import ReadBackUnanswered

    monkeypatch.setattr(finalize, "get_run_logger", lambda: logging.getLogger("finalize-test"))
    err = ReadBackUnanswered("the load balancer's weights", seconds, "Elastic Load Balancing", "verify_timeout_seconds")
    stop = finalize._Progress(unrecorded=False).ran_out("read the weights", str(err), seconds,
                                                       "verify_timeout_seconds", "nothing was changed")
    said = str(stop)
    assert f"within {seconds_said(seconds)} (verify_timeout_seconds): Elastic Load Balancing did not answer" in said
    assert said.count("verify_timeout_seconds") == said.count("(verify_timeout_seconds)") + 1, said  # and --option
