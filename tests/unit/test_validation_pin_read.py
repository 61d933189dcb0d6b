"""flows.validate._pin: the validation's read of the pin rule, given up on, says nothing after."""

from __future__ import annotations

import threading
from types import SimpleNamespace

import flows.validate as validate
from rollway.targets import Targets
from rollway.validation import ValidationSpec


def test_a_pin_read_given_up_on_and_left_running_says_no_asking_again_after_it_was_given_up(monkeypatch):
    """The rules' read goes on in its thread once given up on, asked again while throttled: its
    "asking again" lines reached the run's log after the validation had said the rules could not
    be read and the HTTP checks were not sent, as if it still waited on them."""
    said: list[str] = []
    lock = threading.Lock()
    given_up, done = threading.Event(), threading.Event()

    def line(message: str, *args: object) -> None:
        with lock:
            said.append(message % args if args else message)

    log = SimpleNamespace(info=line, warning=line, error=line)
    monkeypatch.setattr(validate, "get_run_logger", lambda: log)

    class Router:
        def pin(self, header: str, *, checks, say) -> None:
            say("DescribeRules was throttled (Throttling); asking again in under a second (2 of 3)")
            given_up.wait(10)
            say("DescribeRules was throttled (Throttling); asking again in under a second (3 of 3)")
            done.set()

    spec = ValidationSpec(canary_header="X-Rollway-Target: canary")
    pin = validate._pin(spec, Targets(), Router(), 0.2)
    line("%s", pin)  # as the validation logs it
    given_up.set()
    assert done.wait(10)
    assert isinstance(pin, str) and pin.startswith("not sent: ") and "did not answer within 0.2 s" in pin, pin
    assert said[-1] == pin and "(2 of 3)" in said[0], said
