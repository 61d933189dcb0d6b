"""How tasks/undoable.py's tries (``_patiently``) and a rollback's flag disable (tasks/flags.py's
``disable_patiently``) see a failed try, on the loop they share with a throttled AWS read
(``rollway.aws.errors.tried``)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ConnectionClosedError

from tasks.undoable import _patiently, _Write


def test_a_failed_pointing_is_seen_even_when_judging_its_error_fails():
    """``on_error`` (a pointing's ``_Write.failed``, which tells the undo staged before it whether
    the write may have landed) sees each failed try before ``final`` judges it. Judged first, a
    ``final`` that raised left a lost answer unseen: the write read as certainly not applied, and
    the staged undo of a pointing that may have landed did nothing."""
    write = _Write()
    lost = ConnectionClosedError(endpoint_url="https://ecs.eu-west-1.amazonaws.com/")

    def pointing():
        raise lost

    def judging(err: BaseException) -> bool:
        raise LookupError("no code in the answer")

    with pytest.raises(LookupError):
        _patiently("pointing web at rev 2", pointing, final=judging, on_error=write.failed, role="deploy",
                   sleep=lambda _: None)
    assert write.may_have_landed
    assert write.not_applied is None


@pytest.mark.parametrize("final_after", [1, 3])
def test_each_failed_try_is_judged_once(final_after):
    """``final`` judges each failed try once, whether the last is raised as final (refused for
    good, not tried again) or after the last try: its line read the verdict again from ``final``."""
    lost = ConnectionClosedError(endpoint_url="https://ecs.eu-west-1.amazonaws.com/")
    judged: list[BaseException] = []

    def pointing():
        raise lost

    def judging(err: BaseException) -> bool:
        judged.append(err)
        return len(judged) >= final_after

    with pytest.raises(ConnectionClosedError):
        _patiently("pointing web at rev 2", pointing, final=judging, role="deploy", sleep=lambda _: None)
    assert judged == [lost] * final_after


def test_tried_waits_on_the_sleep_of_the_moment_when_given_none(monkeypatch):
    """``tried`` given no ``sleep`` looks ``time.sleep`` up at each wait: bound when the module was
    imported, it could not be patched, and a caller's clock passed as None was ignored."""
    import time

    from rollway.aws.errors import tried

    waited: list[float] = []
    monkeypatch.setattr(time, "sleep", waited.append)
    calls = iter([LookupError("busy"), "read"])

    def call():
        got = next(calls)
        if isinstance(got, BaseException):
            raise got
        return got

    assert tried(call, 2, lambda attempt: 7.0, final=lambda err: False) == "read"
    assert waited == [7.0]


def test_a_rollbacks_patient_disable_tries_again_only_the_flags_the_store_could_not_reach_1_s_then_2_s_apart(caplog):
    """``disable_patiently``, on the same loop: three tries in all, 1 s then 2 s apart, each retry
    writing only the flags the store could not be reached for, each wait said in the run's log."""
    from rollway.fakes import FakeFlagStore
    from rollway.flags import FlagState, FlagStoreUnavailable
    from rollway.spec import FlagBinding
    from tasks.flags import disable_patiently

    class Busy(FakeFlagStore):
        """Throttles the first two writes of ``use_sqs_architecture``."""

        def __init__(self, flags) -> None:
            super().__init__(flags)
            self.asked: list[str] = []

        def put(self, flag, **kwargs):
            self.asked.append(flag.feature)
            if flag.feature == "use_sqs_architecture" and self.asked.count(flag.feature) <= 2:
                raise FlagStoreUnavailable("PutItem on use_sqs_architecture: ProvisionedThroughputExceededException")
            return super().put(flag, **kwargs)

    store = Busy([FlagState(feature="use_sqs_architecture", enabled=True), FlagState(feature="beta", enabled=True)])
    waited: list[float] = []
    with caplog.at_level("WARNING", logger="rollway.flags"):
        done = disable_patiently(store, [FlagBinding(feature="use_sqs_architecture"), FlagBinding(feature="beta")],
                                 actor="judge", reason="error rate", now=20.0, sleep=waited.append)
    assert sorted(update.feature for update in done) == ["beta", "use_sqs_architecture"]
    assert store.asked.count("beta") == 1 and store.asked.count("use_sqs_architecture") == 3, store.asked
    assert waited == [1.0, 2.0]
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert [line.rsplit("; ", 1)[-1] for line in said] == ["trying again in 1 s", "trying again in 2 s"], said
    assert all(line.startswith("rollback: could not disable use_sqs_architecture (") for line in said), said
