"""What the `monitor` flow logs and pages of a person's words: a name (recorded by an older rollway,
whose ``NAME_PATTERN`` let bidirectional-text controls through) or a comment quoted in a window's
end is escaped (``shown``), as the reports show it. A right-to-left override in a finalize's actor
reordered the rest of the "Breach not rolled back" page and the run's warning, and a line break
in a promote's comment wrote a line of its own in the run's log."""

from __future__ import annotations

import logging

from tests.flows.test_monitor_rollout import _recorded_meanwhile, run_monitor_flow

NAME = "carol\u202e tcejer"


def test_a_breach_page_escapes_the_actor_it_names(monkeypatch, caplog):
    env = _recorded_meanwhile(monkeypatch, ("watched", "other-run"), ("finalize-start", NAME))
    with caplog.at_level(logging.WARNING):
        watched = run_monitor_flow()
    [page] = [body for s, body in env.notifier.messages if s.startswith("Breach not rolled back")]
    [logged] = [r.getMessage() for r in caplog.records if "stays in production" in r.getMessage()]
    for where, words in (("page", page), ("result", watched.reason), ("log", logged)):
        assert "\u202e" not in words, (where, words)
        assert "carol\\u202e tcejer" in words, (where, words)


def test_a_breach_whose_rollback_another_finished_escapes_its_comment(monkeypatch, caplog):
    """`rollway abort --reason` finished a rollback during the window: the refusal quoted its
    comment, line break and escape sequence and all, in the run's log line and result."""
    from rollway.ledger import Transition, begin_rollback
    from rollway.phases import RolloutPhase
    from rollway.model import Weights
    from tests.flows.test_monitor_rollout import promoted_world

    def aborted_meanwhile(env):
        service, now = env.targets.canary_service, env.clock.now()
        begin_rollback(env.ledger, service, actor=NAME, reason="aborted", now=now)
        env.ledger.record(service, owner=None, now=now, phase=RolloutPhase.ROLLED_BACK,
                          weights=Weights(stable=100, canary=0),
                          transition=Transition(at=now, kind="rollback", actor=NAME,
                                                comment="bad release\nrollback approved by ops \x1b[2K"))

    env, _ = promoted_world(monkeypatch)
    record = env.ledger.record

    def aborted_first(service, *, transition, **kwargs):  # the abort's rollback ends just before this run's begins
        if transition.kind == "rollback-start" and transition.actor != NAME:
            aborted_meanwhile(env)
        return record(service, transition=transition, **kwargs)

    monkeypatch.setattr(env.ledger, "record", aborted_first)
    with caplog.at_level(logging.INFO):
        watched = run_monitor_flow()
    [logged] = [r.getMessage() for r in caplog.records if r.getMessage().startswith("not rolling back")]
    for where, words in (("result", watched.reason), ("log", logged)):
        assert not any(c in words for c in "\u202e\n\x1b"), (where, words)
        assert "carol\\u202e tcejer" in words and "bad release\\nrollback approved by ops \\x1b[2K" in words, (
            where, words)
