"""Throwaway git repositories for tests: a working repository with its identity configured, the
commits a test asks for, and a bare one next to it as its `origin`."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Mapping, Sequence


def git(cwd: Path, *args: str) -> str:
    """Run plain git in ``cwd`` and return its output: the test's own set-up and checks, outside
    the code under test."""
    return subprocess.run(["git", *args], cwd=cwd, check=True, capture_output=True, text=True).stdout.strip()


def git_repo(root: Path, commits: Sequence[tuple[str, Mapping[str, str]]]) -> Path:
    """Make ``root/work``, a repository with ``commits`` and the bare ``root/origin.git`` as `origin`.

    Args:
        root: An empty directory (a test's ``tmp_path``).
        commits: Oldest first, each a message and the files (name to content) it writes.

    Returns:
        The working repository's directory.
    """
    origin, work = root / "origin.git", root / "work"
    subprocess.run(["git", "init", "-q", "--bare", str(origin)], check=True)
    subprocess.run(["git", "init", "-q", str(work)], check=True)
    git(work, "config", "user.name", "Release Bot")
    git(work, "config", "user.email", "release@example.com")
    for message, files in commits:
        for name, content in files.items():
            (work / name).write_text(content)
        git(work, "add", ".")
        git(work, "commit", "-q", "-m", message)
    git(work, "remote", "add", "origin", str(origin))
    return work


def slow_remote(repo: Path, tmp_path: Path, seconds: float, sides: tuple[str, ...] = ("uploadpack", "receivepack")):
    """`origin` answers each ls-remote (``uploadpack``) and push (``receivepack``) only after ``seconds``
    of silence, as a remote over a slow or stalled connection does: its programs wait before they start."""
    for side in sides:
        program = {"uploadpack": "git-upload-pack", "receivepack": "git-receive-pack"}[side]
        script = tmp_path / f"slow-{program}"
        script.write_text(f'#!/bin/sh\nsleep {seconds}\nexec {program} "$@"\n')
        script.chmod(0o755)
        git(repo, "config", f"remote.origin.{side}", str(script))
