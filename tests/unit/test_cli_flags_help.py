"""`rollway flags --help` names its commands as they are typed.

It said "list, show, change and evaluate them": `rollway flags show` (and a "disable" someone
looked for to turn a flag off at night) was refused as an unknown command; the commands are get,
set and eval, and a flag is turned off with `set NAME --no-enabled`.
"""

from __future__ import annotations

import pytest

from rollway.cli import app


def test_flags_help_names_each_command_and_how_to_turn_a_flag_off(capsys) -> None:
    with pytest.raises(SystemExit):
        app(["flags", "--help"])
    said = " ".join(capsys.readouterr().out.split())
    assert "Feature flags: list, get, set and eval them" in said, said
    assert "rollway flags set NAME --no-enabled turns one off" in said, said
