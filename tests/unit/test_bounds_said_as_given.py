"""A bound a person gave, said as given where a stop quotes it: ``:g`` said 100.0001 s "100" (less
than the wait had) and 1234567 s "1.23457e+06", a figure nobody gave."""
from __future__ import annotations

import logging
from types import SimpleNamespace

import httpx
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


# A setting is quoted as given, in duration words: only a span measured is said to the tenth of a
# second (``duration_said``, ``duration_words``). To the tenth, a pause timeout given as 0.25 s read
# "0.3 s", and one of 59.96 s "1 min".
@pytest.mark.parametrize(("seconds", "said"), [(0.25, "0.25 s"), (59.96, "59.96 s"), (12.3456, "12.3456 s"),
                                               (45.0, "45 s"), (3600.0, "1 h")])
def test_an_approval_timeout_is_said_as_given(seconds, said):
    from flows.canary import unanswered
    from rollway.spec import Approvals

    assert unanswered(Approvals(timeout_seconds=seconds)).startswith(f"a pause unanswered for {said} rolls")


@pytest.mark.parametrize(("seconds", "said"), [(0.25, "0.25 seconds"), (1.0, "1 second"), (59.96, "59.96 seconds")])
def test_finalize_refused_while_the_window_is_open_says_the_window_as_given(seconds, said):
    from rollway.finalize import FinalizeRefused, plan_finalize
    from rollway.ledger import RolloutRecord, Transition
    from rollway.model import ServiceState, Weights
    from rollway.phases import RolloutPhase
    from rollway.spec import RolloutSpec, Stage
    from rollway.targets import Targets

    promoted = 1_800_000_000.0
    spec = RolloutSpec(image="repo/app:2.0.0", stages=[Stage(weight=100)], monitor_seconds=seconds)
    record = RolloutRecord(service="svc", rollout_id="r-1", image=spec.image, spec_json=spec.model_dump_json(),
                           phase=RolloutPhase.PROMOTED, stage_index=0, stage_passed=True,
                           weights=Weights.canary_at(100), canary_task_definition="app:2",
                           monitor_until=promoted + seconds,
                           history=(Transition(at=promoted - 60, kind="start", actor="alice"),
                                    Transition(at=promoted, kind="promote", actor="alice")))

    def state(td: str) -> ServiceState:
        return ServiceState(name="svc", task_definition=td, desired=3, running=3)

    with pytest.raises(FinalizeRefused) as refused:
        plan_finalize(record, spec, live=Weights.canary_at(100), stable=state("app:1"), canary=state("app:2"),
                      targets=Targets(), now=promoted + seconds / 2)
    assert f"its monitoring window is still open ({said} from then" in str(refused.value), refused.value


# A bound given up on, quoted in a stop's words as the setting was given: ``:g`` said a
# read_timeout_seconds of 1234567 "1.23457e+06 s" and a timeout of 12.3456789 s "12.3457 s".
@pytest.mark.parametrize(("seconds", "said"), [(1234567.0, "1234567 s"), (12.3456789, "12.3456789 s")])
def test_a_bound_given_up_on_is_quoted_as_given(seconds, said):
    from rollway.aws.checklist import _throttled
    from rollway.cleanup import CleanupReadUnanswered
    from rollway.http_checks import _transport
    from rollway.toolchain.process import ToolTimeout

    assert f"within {said} (read_timeout_seconds)" in str(CleanupReadUnanswered("ECS", "ListServices", seconds,
                                                                               "the services"))
    assert f"within {said} and was stopped" in str(ToolTimeout(["cdk", "deploy"], seconds, []))
    assert _throttled("ECS", "ListServices", [SimpleNamespace(said="ThrottlingException", at=2.0, sent=1.0)],
                      seconds, unanswered=False).endswith(f"given up on after {said}")
    spec = SimpleNamespace(timeout_seconds=seconds)
    assert f"timed out after {said} (spec.timeout_seconds)" in _transport(
        httpx.ReadTimeout("late"), "GET", "https://edit.example.com/health", spec)


@pytest.mark.parametrize(("lease", "of"), [(None, "600 s"), ((lambda: 100.0, 120.25), "20.3 s")])
def test_finalize_says_a_write_still_waited_on_to_the_second_a_half_up_of_its_bound(monkeypatch, lease, of):
    """A write's "still waiting" line: the time waited to the whole second, a half up (2.5 s "3 s",
    as every span measured), of the bound as given, or of what was left of the lease to the tenth."""
    import flows.finalize as finalize

    said: list[str] = []
    monkeypatch.setattr(finalize, "get_run_logger", lambda: SimpleNamespace(info=lambda m, *a: said.append(m % a)))

    def within(bound, work, *, name, waiting):  # the waits said as ``within`` says them, none waited
        for elapsed in (2.5, 9.4, 10.5):
            waiting(elapsed)
        return work()

    monkeypatch.setattr(finalize, "within", within)
    assert finalize._written("ECS (UpdateService on 'edit-stable')", 600.0, lambda: "sent", lease=lease) == "sent"
    assert said == [f"still waiting for ECS (UpdateService on 'edit-stable') after {n} s of {of}"
                    for n in (3, 9, 11)], said


@pytest.mark.parametrize(("seconds", "said"), [(1234567.0, "1234567"), (100000.5, "100000.5")])
def test_finalize_refusing_a_wait_quotes_it_as_given(capsys, seconds, said):
    # ``:g`` quoted --stable-timeout-seconds 1234567 as "1.23457e+06", and 100000.5 as "100000",
    # a figure nobody gave, refused beside a bound it reads as within reach of.
    from rollway.cli.finalize import finalize

    assert finalize(actor="carol", stable_timeout_seconds=seconds, targets_block=None, credentials_block=None) != 0
    err = capsys.readouterr().err
    assert f"--stable-timeout-seconds {said}: must be a positive number of seconds, at most 86400 (a day)" in err, err
