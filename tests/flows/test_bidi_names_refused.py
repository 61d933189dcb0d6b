"""A name with a bidirectional-text control in it (a right-to-left override, an isolate, a mark) is
refused as it is given, as one with a control character is: invisible, it reorders the words after
it wherever the name is shown raw ("carol<U+202E> tcejer" reads "carol reject"). Every flow's
actor, `--approver` (promote, hold, abort), `--actor` (finalize, `flags set`) and the approval form's
pattern, in Python and in the UI's JavaScript, refuse it before any block, API or AWS call, naming
the character as its code point; a name in any script is still a name."""

from __future__ import annotations

import json
import re
import shutil
import subprocess

import pytest
from prefect.exceptions import ParameterTypeError
from prefect.utilities.callables import parameter_schema

from flows.approvals import NAME_PATTERN, ApprovalInput
from tests.flows.test_actor_param import FLOWS
from tests.unit.test_bidi_shown import BIDI

NAMES = ["Łukasz", "张伟", "مريم", "Ольга Петрова", "שרה", "O'Neil (on call)"]
OVERRIDDEN = "carol\u202e tcejer"


class Reached(Exception):
    """The command went past its checks to load the blocks or the AWS clients."""


def reached(*args, **kwargs):
    raise Reached


@pytest.mark.parametrize("control", list(BIDI), ids=[f"U+{ord(c):04X}" for c in BIDI])
def test_the_name_pattern_refuses_every_bidi_control(control):
    for name in (f"dana{control}", f"{control}dana", f"dana {control}enoN"):
        assert not re.search(NAME_PATTERN, name), ascii(name)
    assert ApprovalInput.model_json_schema()["properties"]["approver"]["pattern"] == NAME_PATTERN
    with pytest.raises(ValueError, match="approver"):
        ApprovalInput.model_validate({"action": "approve", "approver": f"dana{control}"})


def test_the_name_pattern_takes_a_name_in_any_script():
    for name in NAMES:
        assert re.search(NAME_PATTERN, name), name
        assert ApprovalInput.model_validate({"action": "approve", "approver": name}).approver == name


@pytest.mark.skipif(shutil.which("node") is None, reason="no node to read the pattern as the UI's JavaScript does")
def test_the_ui_reads_the_name_pattern_alike():
    """The UI checks the form's pattern with JavaScript's RegExp (with and without the u flag):
    a Python-only syntax would be an error there, or a different rule."""
    script = """
        const [pattern, names] = JSON.parse(process.argv[1]);
        const read = ["", "u"].map(flags => names.map(name => new RegExp(pattern, flags).test(name)));
        console.log(JSON.stringify(read));
    """
    names = [*NAMES, *(f"dana{c}" for c in BIDI), OVERRIDDEN, "bob\x1b[2K", "   "]
    ran = subprocess.run(["node", "-e", script, json.dumps([NAME_PATTERN, names])],
                         capture_output=True, text=True, timeout=60, check=True)
    expected = [bool(re.search(NAME_PATTERN, name)) for name in names]
    assert expected == [True] * len(NAMES) + [False] * (len(names) - len(NAMES))
    assert json.loads(ran.stdout) == [expected, expected], ran.stdout


@pytest.mark.parametrize(("run", "parameters"), FLOWS)
def test_every_flows_actor_refuses_a_bidi_control_naming_it(run, parameters):
    with pytest.raises(ParameterTypeError, match=r"no bidirectional-text controls; it holds U\+202E"):
        run.validate_parameters({**parameters, "actor": OVERRIDDEN})
    for name in NAMES:
        assert run.validate_parameters({**parameters, "actor": name})["actor"] == name
    pattern = parameter_schema(run.fn).model_dump()["properties"]["actor"]["pattern"]
    assert pattern == NAME_PATTERN


def command_line(monkeypatch, capsys, args: list[str]) -> tuple[int | str, str]:
    """``rollway *args``'s exit code (or "reached" when it went on to load the blocks or the AWS
    clients) and its standard error, on one line."""
    import flows.env
    from rollway.cli import app, ops

    monkeypatch.setattr(ops, "load_account", reached)
    monkeypatch.setattr(flows.env, "load_clients", reached)
    try:
        code: int | str = app(args, result_action="return_value")
    except Reached:
        code = "reached"
    except SystemExit as stop:
        code = int(stop.code)
    return code, " ".join(capsys.readouterr().err.split())


COMMANDS = [
    pytest.param(["promote", "--approver"], "--approver", id="promote"),
    pytest.param(["hold", "--approver"], "--approver", id="hold"),
    pytest.param(["abort", "--approver"], "--approver", id="abort"),
    pytest.param(["finalize", "--actor"], "--actor", id="finalize"),
    pytest.param(["flags", "set", "use_sqs_architecture", "--enabled", "--actor"], "--actor", id="flags set"),
]


@pytest.mark.parametrize(("command", "option"), COMMANDS)
def test_a_command_refuses_a_name_with_a_bidi_control_before_any_call(monkeypatch, capsys, command, option):
    code, err = command_line(monkeypatch, capsys, [*command, OVERRIDDEN])
    assert code == 2, (code, err)
    assert f"{option} 'carol\\u202e tcejer'" in err and "it holds U+202E, a bidirectional-text control" in err, err
    assert "\u202e" not in err and "Traceback" not in err, err


@pytest.mark.parametrize(("command", "option"), COMMANDS)
@pytest.mark.parametrize("name", NAMES[:3])
def test_a_command_takes_a_name_in_any_script(monkeypatch, capsys, command, option, name):
    code, err = command_line(monkeypatch, capsys, [*command, name])
    assert code == "reached", (code, err)


@pytest.mark.parametrize("command", ["promote", "hold", "abort"])
@pytest.mark.parametrize("name", [OVERRIDDEN, "bob\x1b[2K"])
def test_an_approvers_refusal_says_where_the_name_goes_as_typed(monkeypatch, capsys, command, name):
    """The run's log shows an approver's name escaped, and the pages its escape sequences and
    overrides: the refusal names where it goes as typed, the ledger."""
    code, err = command_line(monkeypatch, capsys, [command, "--approver", name])
    assert code == 2, (code, err)
    said = " ".join(err.split())
    assert ": the ledger keeps it as typed;" in said, err
    assert "run's log" not in said and "pages" not in said, err
