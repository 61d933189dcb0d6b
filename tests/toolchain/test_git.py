"""GitCli against the real git, in throwaway repositories: a working repo and a bare one as `origin`."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from rollway.cleanup import check_git_tag_name
from rollway.toolchain.git import GitCli, GitError, TagConflict
from tests.toolchain.git_repo import git, git_repo, slow_remote

TAG, MESSAGE = "pre-sqs-architecture", "Archive before SQS migration"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A repository with two commits, its identity configured, and a bare `origin`."""
    return git_repo(tmp_path, [(f"version {n}", {"app.txt": f"version {n}\n"}) for n in (1, 2)])


def test_an_annotated_tag_is_created_and_a_rerun_leaves_it_alone(repo: Path):
    cli = GitCli(repo)
    head = git(repo, "rev-parse", "HEAD")
    assert cli.create_tag(TAG, MESSAGE) == "created"
    assert git(repo, "cat-file", "-t", TAG) == "tag", "annotated, not lightweight"
    assert git(repo, "rev-parse", f"{TAG}^{{commit}}") == head
    assert git(repo, "tag", "-l", "--format=%(contents:subject)", TAG) == MESSAGE
    tag_object = git(repo, "rev-parse", TAG)

    assert cli.create_tag(TAG, MESSAGE) == "exists"
    assert git(repo, "rev-parse", TAG) == tag_object, "the same tag object: not re-created"
    assert cli.local_tag(TAG) == (head, True)


def test_a_tag_on_an_older_commit_is_created_there(repo: Path):
    first = git(repo, "rev-parse", "HEAD~1")
    assert GitCli(repo).create_tag(TAG, MESSAGE, "HEAD~1") == "created"
    assert git(repo, "rev-parse", f"{TAG}^{{commit}}") == first


def test_a_tag_that_exists_on_another_commit_is_refused_and_not_moved(repo: Path):
    cli = GitCli(repo)
    cli.create_tag(TAG, MESSAGE, "HEAD~1")
    before = git(repo, "rev-parse", TAG)
    with pytest.raises(TagConflict, match="exists already on commit"):
        cli.create_tag(TAG, MESSAGE)  # HEAD now
    assert git(repo, "rev-parse", TAG) == before


def test_a_lightweight_tag_of_that_name_is_refused(repo: Path):
    git(repo, "tag", TAG)
    with pytest.raises(TagConflict, match="lightweight"):
        GitCli(repo).create_tag(TAG, MESSAGE)


def test_the_pushed_tag_is_in_the_bare_repository_and_a_second_push_is_fine(repo: Path):
    cli = GitCli(repo)
    cli.create_tag(TAG, MESSAGE)
    origin = repo.parent / "origin.git"
    assert cli.remote_tag("origin", TAG) is None
    assert cli.push_tag("origin", TAG) == "pushed"
    assert git(origin, "rev-parse", f"refs/tags/{TAG}") == git(repo, "rev-parse", TAG)
    assert git(origin, "cat-file", "-t", f"refs/tags/{TAG}") == "tag"
    assert cli.remote_tag("origin", TAG) == git(repo, "rev-parse", "HEAD")
    assert cli.push_tag("origin", TAG) == "already_there"


def test_a_remote_tag_on_another_commit_is_refused_and_left_alone(repo: Path, tmp_path: Path):
    # Someone else pushed the name first, from an older commit.
    other = tmp_path / "other"
    subprocess.run(["git", "clone", "-q", str(tmp_path / "origin.git"), str(other)], check=True, capture_output=True)
    git(repo, "push", "-q", "origin", "HEAD~1:refs/heads/main")
    git(other, "fetch", "-q", "origin")
    git(other, "-c", "user.name=x", "-c", "user.email=x@x", "tag", "-a", TAG, "-m", "theirs", "origin/main")
    git(other, "push", "-q", "origin", f"refs/tags/{TAG}")
    theirs = git(tmp_path / "origin.git", "rev-parse", f"refs/tags/{TAG}")

    cli = GitCli(repo)
    cli.create_tag(TAG, MESSAGE)
    with pytest.raises(TagConflict, match="remote 'origin' has tag"):
        cli.push_tag("origin", TAG)
    assert git(tmp_path / "origin.git", "rev-parse", f"refs/tags/{TAG}") == theirs


def test_bad_input_is_refused_before_git_runs(repo: Path, tmp_path: Path):
    cli = GitCli(repo)
    with pytest.raises(ValueError, match="not a valid git tag name"):
        cli.create_tag("bad..name", MESSAGE)
    with pytest.raises(ValueError, match="needs a message"):
        cli.create_tag(TAG, " ")
    with pytest.raises(GitError, match="names no commit"):
        cli.create_tag(TAG, MESSAGE, "no-such-branch")
    with pytest.raises(GitError, match="no tag"):
        cli.push_tag("origin", TAG)
    with pytest.raises(GitError, match="could not read the tags of remote 'nowhere'"):
        cli.remote_tag("nowhere", TAG)
    with pytest.raises(GitError, match="is not a directory"):
        GitCli(tmp_path / "missing")
    assert git(repo, "tag", "-l") == ""


NAMES = ["pre-sqs-architecture", "v1.0.0", "archive/2026-11", "a@b", "über", "a..b", "a/", "a//b", ".a", "a/.b",
         "a.lock", "a/b.lock/c", "a.", "a@{b", "a~1", "a^", "a:b", "a?", "a*", "a[b", "a\\b", "a b", "a\tb"]


@pytest.mark.parametrize("name", NAMES)
def test_the_tag_name_check_agrees_with_git_check_ref_format(name: str):
    by_git = subprocess.run(["git", "check-ref-format", f"refs/tags/{name}"], capture_output=True).returncode == 0
    try:
        check_git_tag_name(name)
        ours = True
    except ValueError:
        ours = False
    assert ours == by_git


@pytest.mark.parametrize("name", ["-x", "@", "HEAD"])
def test_names_git_tag_would_misread_are_refused_though_check_ref_format_takes_them(name: str):
    assert subprocess.run(["git", "check-ref-format", f"refs/tags/{name}"], capture_output=True).returncode == 0
    with pytest.raises(ValueError, match="not a valid git tag name"):
        check_git_tag_name(name)


def test_git_and_the_hooks_it_runs_get_no_credentials_of_the_worker(repo: Path, tmp_path: Path, monkeypatch):
    # A checkout's hooks are code the worker runs: they used to see the worker's whole
    # environment, its AWS keys and Prefect API key among it.
    seen = tmp_path / "hook-env"
    hook = repo / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\nenv > {seen}\n")
    hook.chmod(0o755)
    secrets = {"AWS_ACCESS_KEY_ID": "AKIAWORKER", "AWS_SECRET_ACCESS_KEY": "worker-secret",
               "AWS_SESSION_TOKEN": "worker-session", "AWS_CONTAINER_AUTHORIZATION_TOKEN": "container-token",
               "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://169.254.170.23/v1/credentials",
               "PREFECT_API_KEY": "pnu_secret", "GITHUB_TOKEN": "ghp_secret"}
    for name, value in {**secrets, "AWS_PROFILE": "archive", "GIT_SSH_COMMAND": "ssh -o BatchMode=yes"}.items():
        monkeypatch.setenv(name, value)
    cli = GitCli(repo)
    cli.create_tag(TAG, MESSAGE)
    assert cli.push_tag("origin", TAG) == "pushed"
    env = dict(line.split("=", 1) for line in seen.read_text().splitlines() if "=" in line)
    assert not set(secrets) & set(env), "no credentials of the worker reach git"
    assert not any(value in seen.read_text() for value in secrets.values())
    # What git needs to reach a remote does.
    assert env["GIT_SSH_COMMAND"] == "ssh -o BatchMode=yes" and env["AWS_PROFILE"] == "archive"
    assert env["GIT_TERMINAL_PROMPT"] == "0" and "PATH" in env


def test_a_git_dir_set_on_the_worker_does_not_send_the_tag_to_another_repository(repo: Path, tmp_path: Path,
                                                                                monkeypatch):
    other = git_repo(tmp_path / "other", [("elsewhere", {"other.txt": "other\n"})])
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    assert GitCli(repo).create_tag(TAG, MESSAGE) == "created"
    monkeypatch.delenv("GIT_DIR")
    assert git(repo, "tag", "-l") == TAG and git(other, "tag", "-l") == ""


def test_reading_the_working_tree_writes_nothing_to_the_checkout(repo: Path):
    """``git status`` refreshes the index, rewriting it (under ``index.lock``) when a file's stat
    information changed: a dry run of cleanup wrote to the checkout it only reads, and could make a
    person's git command there fail on the lock meanwhile."""
    import os
    import time

    index = repo / ".git" / "index"
    time.sleep(1.1)  # a racily clean index is rewritten regardless; make its entries older than it
    later = time.time() + 5
    os.utime(repo / "app.txt", (later, later))  # same content, newer stat: git refreshes the index
    before = index.stat().st_mtime_ns, index.read_bytes()
    assert GitCli(repo).uncommitted() == ()
    assert (index.stat().st_mtime_ns, index.read_bytes()) == before


def test_a_remote_waited_for_says_the_seconds_waited_a_half_up(repo: Path, monkeypatch):
    """Python's ``:.0f`` took a half second to the even whole: 2.5 s waited read "2 s", where every
    other span measured reads "3 s"."""
    import rollway.toolchain.git as git_module

    said: list[str] = []
    real = git_module.run_tool

    def waits_said(argv, **options):
        if options.get("on_quiet") is not None:
            for elapsed in (2.5, 3.5, 9.4):
                options["on_quiet"](elapsed, elapsed)
        return real(argv, **options)

    monkeypatch.setattr(git_module, "run_tool", waits_said)
    cli = GitCli(repo, on_line=said.append)
    cli._run("status", quiet=True, waiting_for="remote 'origin' to answer")
    assert said == [f"still waiting for remote 'origin' to answer after {n} s of 120 s" for n in (3, 4, 9)], said


def test_a_remote_slow_to_answer_is_said_to_be_waited_for_while_git_prints_nothing(repo: Path, tmp_path: Path):
    slow_remote(repo, tmp_path, 1.2)
    said: list[str] = []
    cli = GitCli(repo, on_line=said.append, waiting_said_every_seconds=0.5)
    cli.create_tag(TAG, MESSAGE)

    assert cli.push_tag("origin", TAG) == "pushed"

    waits = [line for line in said if line.startswith("still waiting for remote 'origin'")]
    assert any("to list its tags (git ls-remote) after 1 s of 120 s" in line for line in waits), said
    assert any(f"to take tag {TAG!r} (git push) after 1 s of 120 s" in line for line in waits), said
    assert git(tmp_path / "origin.git", "rev-parse", f"{TAG}^{{commit}}") == git(repo, "rev-parse", "HEAD")
