"""A docker command that prints nothing for a while still shows in the log that it is going
(docker prints no upload or download progress off a terminal)."""

from __future__ import annotations

import sys
import threading
import time

from rollway.toolchain.docker import DockerCli

DIGEST = "sha256:" + "ab" * 32
NOTICE = "docker push is still running ("


def test_a_push_that_prints_nothing_for_a_while_is_said_to_be_still_running(tmp_path):
    # A docker that, like a push of a large layer off a terminal, prints one line, then nothing for
    # a while, then the digest.
    docker = tmp_path / "docker"
    docker.write_text(f"#!{sys.executable}\nimport time\nprint('abc123: Preparing', flush=True)\n"
                      f"time.sleep(1.2)\nprint('2.0.0: digest: {DIGEST} size: 524', flush=True)\n")
    docker.chmod(0o755)
    lines: list[str] = []
    cli = DockerCli(str(docker), tmp_path, on_line=lines.append, quiet_notice_seconds=0.4)

    started = time.monotonic()
    assert cli.push("127.0.0.1:5000/webordinary/edit-container:2.0.0") == DIGEST
    took = time.monotonic() - started

    # docker's own lines pass through as printed. The interpreter standing in for docker may take
    # longer than a quiet spell to start on a loaded machine, so a notice may come before its first line.
    assert [line for line in lines if not line.startswith(NOTICE)] == [
        "abc123: Preparing", f"2.0.0: digest: {DIGEST} size: 524"]
    quiet = lines[lines.index("abc123: Preparing") + 1:-1]
    assert quiet and all(n.startswith(NOTICE) for n in quiet), lines  # the 1.2 s without a line is said
    assert "docker shows no upload or download progress" in quiet[0]
    notices = [line for line in lines if line.startswith(NOTICE)]
    assert len(notices) <= took / 0.4 + 1, lines  # one per quiet spell of 0.4 s, not one per look
    assert not [t for t in threading.enumerate() if t.name.startswith("still-running-")]  # stopped with the push
