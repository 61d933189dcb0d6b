"""No process is started through a shell, anywhere in the project (its tests included).

A command string handed to a shell is parsed again there: a tag, a path or a stack name with a
space, a quote or a ``;`` in it runs something else, and its whole text, secrets included, is
one argument anyone can read in ``ps``. Every command is an argument list (rollway.toolchain.
process.run_tool, rollway.cli.processes.Child), secrets on stdin.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("rollway", "flows", "tasks", "blocks", "deployments", "scripts", "benchmarks", "tests")
# Calls that always go through a shell.
_SHELL_CALLS = {("os", "system"), ("os", "popen"), ("asyncio", "create_subprocess_shell"),
                ("subprocess", "getoutput"), ("subprocess", "getstatusoutput")}
# Calls that take a command: a string is run by a shell (shell=True) or as one program's name.
_COMMAND_CALLS = {"run", "Popen", "call", "check_call", "check_output"}


def _name(node: ast.expr) -> tuple[str, str] | None:
    """("module", "function") of a call written ``module.function(...)``."""
    if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
        return node.value.id, node.attr
    return None


def _is_text(node: ast.expr) -> bool:
    """A string literal, an f-string, or text built with + or %."""
    return (isinstance(node, ast.JoinedStr) or (isinstance(node, ast.Constant) and isinstance(node.value, str))
            or (isinstance(node, ast.BinOp) and (_is_text(node.left) or _is_text(node.right))))


def shell_uses(source: str) -> list[tuple[int, str]]:
    """(line, what) of every start of a process through a shell in ``source``."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = _name(node.func)
        if name in _SHELL_CALLS:
            found.append((node.lineno, f"{name[0]}.{name[1]}"))
            continue
        if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
               for k in node.keywords):
            found.append((node.lineno, "shell="))
        elif name is not None and name[0] == "subprocess" and name[1] in _COMMAND_CALLS and node.args \
                and _is_text(node.args[0]):
            found.append((node.lineno, f"subprocess.{name[1]} of a command string"))
    return found


def _python_files() -> list[Path]:
    return sorted(p for top in SOURCES for p in (ROOT / top).rglob("*.py") if ".venv" not in p.parts)


# Every finding of shell_uses names one of these: a _SHELL_CALLS function (system, popen,
# create_subprocess_shell, subprocess.getoutput...), a shell= keyword or a subprocess.* call. A file
# without any is not parsed: most of the project's 5 MB of sources, whose parsing took seconds.
_MAY_START_A_SHELL = re.compile(r"shell|system|popen|subprocess")


def may_use_a_shell(source: str) -> bool:
    """Whether ``source`` holds a word shell_uses could find (it cannot find anything without)."""
    return _MAY_START_A_SHELL.search(source) is not None


def test_no_process_is_started_through_a_shell():
    found = [f"{path.relative_to(ROOT)}:{line}: {what}" for path in _python_files()
             for source in [path.read_text()] if may_use_a_shell(source)
             for line, what in shell_uses(source)]
    assert not found, "a process started through a shell (use an argument list):\n" + "\n".join(found)


@pytest.mark.parametrize("source", [
    "import os\nos.system('docker login -p ' + password)",
    "import os\nos.popen('ps')",
    "import subprocess\nsubprocess.run(['docker', 'push'], shell=True)",
    "import subprocess\nsubprocess.run(command, shell=flag)",
    "import subprocess\nsubprocess.check_output(f'git tag {tag}')",
    "import subprocess\nsubprocess.Popen('cdk deploy')",
    "import subprocess\nsubprocess.getoutput('ls')",
    "import asyncio\nasyncio.create_subprocess_shell('ls')",
])
def test_the_check_finds_a_shell(source):
    assert shell_uses(source)
    assert may_use_a_shell(source), "the project-wide check would not have read this source"


def test_the_check_passes_argument_lists():
    assert not shell_uses("import subprocess\nsubprocess.run(['git', 'tag', tag], check=True, shell=False)\n"
                          "subprocess.Popen([sys.executable, '-c', code])")
