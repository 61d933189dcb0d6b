"""A docker command that prints nothing for a while still shows in the log that it is going
(docker prints no upload or download progress off a terminal)."""

from __future__ import annotations

import sys
import threading

from rollway.toolchain.docker import DockerCli

DIGEST = "sha256:" + "ab" * 32


def test_a_push_that_prints_nothing_for_a_while_is_said_to_be_still_running(tmp_path):
    # A docker that, like a push of a large layer off a terminal, prints one line, then nothing for
    # a while, then the digest.
    docker = tmp_path / "docker"
    docker.write_text(f"#!{sys.executable}\nimport time\nprint('abc123: Preparing', flush=True)\n"
                      f"time.sleep(1.2)\nprint('2.0.0: digest: {DIGEST} size: 524', flush=True)\n")
    docker.chmod(0o755)
    lines: list[str] = []
    cli = DockerCli(str(docker), tmp_path, on_line=lines.append, quiet_notice_seconds=0.4)

    assert cli.push("127.0.0.1:5000/webordinary/edit-container:2.0.0") == DIGEST

    assert lines[0] == "abc123: Preparing" and lines[-1].startswith("2.0.0: digest:")
    notices = lines[1:-1]
    assert notices and all(n.startswith("docker push is still running (") for n in notices)
    assert "docker shows no upload or download progress" in notices[0]
    assert len(notices) <= 3  # one per quiet spell of 0.4 s, not one per look
    assert not [t for t in threading.enumerate() if t.name.startswith("still-running-")]  # stopped with the push
