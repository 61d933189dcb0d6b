"""git, for archiving: an annotated tag on a commit, pushed to a remote.

Every command goes through ``rollway.toolchain.process`` (an argument list, never a shell).
Both writes are safe to repeat: a tag that exists already on the same commit is left alone, and
a remote that has the same tag already is not pushed to again. A tag of that name on another
commit is refused, locally and on the remote: an archive tag that moves archives nothing.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

from rollway import deadline
from rollway.bounds import seconds_said, whole_seconds
from rollway.cleanup import check_git_tag_name
from rollway.toolchain.process import TOOL_ENVIRONMENT, ToolError, ToolFailed, ToolResult, resolve, run_tool


# What git needs of the worker's environment to run, find its config and identity, and reach a
# remote (a proxy, an ssh agent, a credential helper's askpass); the worker's AWS keys, Prefect
# API key and other tokens are none of its business, nor of the hooks a checkout may run.
_INHERITED = TOOL_ENVIRONMENT | {
    "USER", "LOGNAME", "LANGUAGE", "TZ", "XDG_CONFIG_HOME", "ALL_PROXY", "all_proxy", "CURL_CA_BUNDLE",
    "SSH_AUTH_SOCK", "SSH_ASKPASS", "SSL_CERT_FILE", "SSL_CERT_DIR",
    # A CodeCommit remote (git-remote-codecommit, `aws codecommit credential-helper`)
    # finds its credentials through a profile: the names of one, never keys.
    "AWS_PROFILE", "AWS_CONFIG_FILE", "AWS_SHARED_CREDENTIALS_FILE", "AWS_REGION", "AWS_DEFAULT_REGION",
    "AWS_CA_BUNDLE",
}
# git's own settings pass (GIT_SSH_COMMAND, GIT_ASKPASS, GIT_AUTHOR_NAME, GIT_CONFIG_GLOBAL, ...), but
# not those that say which repository to act in: repo_dir says that, and a GIT_DIR set on the
# worker would have tagged another repository.
_GIT_PREFIX = "GIT_"
_REPOSITORY_SETTINGS = frozenset({"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
                                  "GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_COMMON_DIR", "GIT_NAMESPACE",
                                  "GIT_CEILING_DIRECTORIES", "GIT_DISCOVERY_ACROSS_FILESYSTEM"})


def git_environment(inherited: Mapping[str, str]) -> dict[str, str]:
    """git's whole environment: the few variables of ``inherited`` it uses, and no prompt."""
    env = {k: v for k, v in inherited.items()
           if k in _INHERITED or k.startswith("LC_")
           or (k.startswith(_GIT_PREFIX) and k not in _REPOSITORY_SETTINGS)}
    # Never wait for a password typed on a terminal no one watches: fail and say so instead.
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


class GitError(ToolError):
    """git could not do what was asked (not a repository, an unknown revision or remote)."""


class TagConflict(GitError):
    """A tag of that name exists already on another commit (or is not annotated); nothing was changed."""


class GitCli:
    """The ``git`` command in one checkout.

    Args:
        repo_dir: the working tree (or bare repository) to act in.
        timeout_seconds: how long one git command may take (a push talks to a remote).
        on_line: called with each line git prints, and every ``waiting_said_every_seconds`` a
            command waiting on a remote prints nothing, with a line saying it still waits.
        executable: the git to run (a name on PATH or a path).
        waiting_said_every_seconds: ``rollway.deadline.WAITING_SAID_EVERY_SECONDS`` unless given: ls-remote
            and push may each sit silent until their timeout (120 s by default) on a slow or stalled
            link, and a run's log with nothing in it for two minutes could not be told from a hung run.

    Raises:
        ToolMissing: git is not installed.
        GitError: ``repo_dir`` is not a directory.
    """

    def __init__(self, repo_dir: str | os.PathLike[str], *, timeout_seconds: float = 120.0,
                 on_line: Callable[[str], None] | None = None, executable: str = "git",
                 waiting_said_every_seconds: float | None = None) -> None:
        self._git = resolve(executable, hint="install git (apt-get install git)")
        self._dir = Path(repo_dir)
        if not self._dir.is_dir():
            raise GitError(f"{str(self._dir)!r} is not a directory: repo_dir must be the git checkout to tag in")
        self._timeout = timeout_seconds
        self._on_line = on_line
        self._waiting_every = deadline.WAITING_SAID_EVERY_SECONDS if waiting_said_every_seconds is None \
            else waiting_said_every_seconds
        self._env = git_environment(os.environ)

    def _run(self, *args: str, quiet: bool = False, waiting_for: str | None = None) -> ToolResult:
        """git ``args``; ``quiet``: its lines are not passed on. ``waiting_for``: what a command
        talking to a remote waits for, said while it prints nothing (quiet or not)."""
        said, waiting = self._on_line, None
        if said is not None and waiting_for is not None:
            def waiting(elapsed: float, _silent: float) -> None:
                said(f"still waiting for {waiting_for} after {whole_seconds(elapsed)} s of {seconds_said(self._timeout)}")
        return run_tool([self._git, *args], timeout_seconds=self._timeout, cwd=self._dir, env=self._env,
                        on_line=None if quiet else said, on_quiet=waiting, quiet_seconds=self._waiting_every)

    def commit_of(self, revision: str) -> str:
        """The full commit id ``revision`` names.

        Raises:
            GitError: not a repository, or ``revision`` names no commit.
        """
        if revision.startswith("-"):
            raise GitError(f"{revision!r} is not a revision (it would be read as an option)")
        try:
            result = self._run("rev-parse", "--verify", "--quiet", f"{revision}^{{commit}}", quiet=True)
        except ToolFailed as err:
            said = "; ".join(err.tail) or "no such commit"
            raise GitError(f"{revision!r} names no commit in {self._dir}: {said}") from err
        return result.output[-1].strip()

    def local_tag(self, tag: str) -> tuple[str | None, bool]:
        """(The commit the tag points at, whether it is annotated); (None, False) without such a tag."""
        check_git_tag_name(tag)
        ref = f"refs/tags/{tag}"
        try:
            commit = self._run("rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", quiet=True).output[-1].strip()
        except ToolFailed as err:
            if err.returncode == 1:  # --verify --quiet: exit 1 and no output for a missing ref
                return None, False
            raise GitError(f"could not read tag {tag!r} in {self._dir}: {'; '.join(err.tail)}") from err
        kind = self._run("cat-file", "-t", ref, quiet=True).output[-1].strip()
        return commit, kind == "tag"

    def remote_tag(self, remote: str, tag: str) -> str | None:
        """The commit ``remote``'s tag of that name points at, or None when it has none.

        Raises:
            GitError: the remote cannot be reached or is unknown.
        """
        check_git_tag_name(tag)
        ref = f"refs/tags/{tag}"
        try:
            lines = self._run("ls-remote", "--tags", "--", remote, ref, f"{ref}^{{}}", quiet=True,
                              waiting_for=f"remote {remote!r} to list its tags (git ls-remote)").output
        except ToolFailed as err:
            raise GitError(f"could not read the tags of remote {remote!r}: {'; '.join(err.tail)}") from err
        found = dict(reversed(line.split("\t", 1)) for line in lines if "\t" in line)
        # An annotated tag is listed twice: the tag object, and (^{}) the commit it points at.
        return found.get(f"{ref}^{{}}") or found.get(ref)

    def uncommitted(self) -> tuple[str, ...]:
        """The working tree's changes a tag of HEAD would not hold, one ``git status --porcelain``
        line each (``M handler.ts``, ``?? notes.md``): modified, staged, deleted and untracked
        files; ignored ones are not listed. None in a bare repository (no working tree).

        Raises:
            GitError: git could not read the working tree.
        """
        try:
            bare = self._run("rev-parse", "--is-bare-repository", quiet=True).output[-1].strip() == "true"
            if bare:
                return ()
            # Without --no-optional-locks, status rewrites the index (under index.lock) to refresh
            # stale stat information: a read (a dry run's) wrote to the checkout, and a person's git
            # command there could fail on the lock meanwhile.
            lines = self._run("--no-optional-locks", "status", "--porcelain", "--untracked-files=all",
                              quiet=True).output
        except ToolFailed as err:
            raise GitError(f"could not read the working tree of {self._dir}: {'; '.join(err.tail)}") from err
        return tuple(line.strip() for line in lines if line.strip())

    def tagger_problem(self) -> str | None:
        """Why git could not name the tagger of an annotated tag here (None: it can).

        ``git tag -a`` needs a committer identity; a fresh worker (a container) often has none,
        which is better told while nothing has been done than at the tag step.
        """
        try:
            self._run("var", "GIT_COMMITTER_IDENT", quiet=True)
        except ToolFailed as err:
            return "; ".join(line for line in err.tail if line.startswith(("fatal:", "error:"))) or "; ".join(err.tail)
        return None

    def create_tag(self, tag: str, message: str, commit: str | None = None) -> Literal["created", "exists"]:
        """``git tag -a <tag> -m <message> [<commit>]``; nothing to do when it exists on that commit.

        Raises:
            ValueError: a tag name git would refuse, or an empty message (before git runs).
            TagConflict: the tag exists on another commit, or as a lightweight tag.
            GitError: the commit does not exist.
        """
        check_git_tag_name(tag)
        if not message.strip():
            raise ValueError("an annotated tag needs a message")
        target = self.commit_of(commit or "HEAD")
        existing, annotated = self.local_tag(tag)
        if existing is not None:
            if existing != target:
                raise TagConflict(f"tag {tag!r} exists already on commit {existing}, not on {target}: it was not "
                                  "moved; choose another name, or delete the old tag yourself if it is wrong")
            if not annotated:
                raise TagConflict(f"tag {tag!r} exists already on {target} as a lightweight tag; delete it "
                                  f"(`git tag -d {tag}`) to have it created annotated")
            return "exists"
        self._run("tag", "-a", tag, "-m", message, target)
        return "created"

    def push_tag(self, remote: str, tag: str) -> Literal["pushed", "already_there"]:
        """``git push <remote> refs/tags/<tag>``, then read back that the remote has it.

        Raises:
            TagConflict: the remote has a tag of that name on another commit (nothing pushed).
            GitError: no such local tag, or the push or the read-back failed.
        """
        local, _ = self.local_tag(tag)
        if local is None:
            raise GitError(f"there is no tag {tag!r} in {self._dir} to push")
        remote_commit = self.remote_tag(remote, tag)
        if remote_commit == local:
            return "already_there"
        if remote_commit is not None:
            raise TagConflict(f"remote {remote!r} has tag {tag!r} already on commit {remote_commit}, not on {local}: "
                              "nothing was pushed")
        try:
            self._run("push", "--", remote, f"refs/tags/{tag}",
                      waiting_for=f"remote {remote!r} to take tag {tag!r} (git push)")
        except ToolFailed as err:
            raise GitError(f"pushing tag {tag!r} to {remote!r} failed: {'; '.join(err.tail[-5:])}") from err
        after = self.remote_tag(remote, tag)
        if after != local:
            raise GitError(f"pushed tag {tag!r} to {remote!r}, but the remote shows it on {after}, not {local}")
        return "pushed"
