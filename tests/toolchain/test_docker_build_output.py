"""What a failed BuildKit build shows the person: the failing step's own output and BuildKit's
reason, not the Dockerfile snippet BuildKit prints after them. The output is BuildKit's as the
docker CLI (buildx) prints it off a terminal (``--progress=plain``), captured as text."""

from __future__ import annotations

from rollway.toolchain.docker import BuildFailed

# docker build of a service whose requirements name a version that does not exist (buildx 0.12).
PIP_FAILS = """\
#0 building with "default" instance using docker driver

#1 [internal] load build definition from Dockerfile
#1 transferring dockerfile: 182B done
#1 DONE 0.0s

#2 [internal] load metadata for docker.io/library/python:3.12-slim
#2 DONE 0.9s

#3 [internal] load .dockerignore
#3 transferring context: 2B done
#3 DONE 0.0s

#4 [1/5] FROM docker.io/library/python:3.12-slim@sha256:af4e85f1cac90dd3771e47292ea7c8a9830abfabbe4faa5c53f158854c2e819d
#4 DONE 0.0s

#5 [internal] load build context
#5 transferring context: 1.12kB done
#5 DONE 0.0s

#6 [2/5] WORKDIR /app
#6 CACHED

#7 [3/5] COPY requirements.txt .
#7 CACHED

#8 [4/5] RUN pip install --no-cache-dir -r requirements.txt
#8 1.204 Collecting boto3==1.34.0 (from -r requirements.txt (line 1))
#8 1.391   Downloading boto3-1.34.0-py3-none-any.whl.metadata (6.6 kB)
#8 1.532 ERROR: Could not find a version that satisfies the requirement flask==9.9 (from versions: 0.1, 0.2, 3.0.3)
#8 1.533 ERROR: No matching distribution found for flask==9.9
#8 ERROR: process "/bin/sh -c pip install --no-cache-dir -r requirements.txt" did not complete successfully: exit code: 1
------
 > [4/5] RUN pip install --no-cache-dir -r requirements.txt:
1.204 Collecting boto3==1.34.0 (from -r requirements.txt (line 1))
1.391   Downloading boto3-1.34.0-py3-none-any.whl.metadata (6.6 kB)
1.532 ERROR: Could not find a version that satisfies the requirement flask==9.9 (from versions: 0.1, 0.2, 3.0.3)
1.533 ERROR: No matching distribution found for flask==9.9
------
Dockerfile:4
--------------------
   2 |     WORKDIR /app
   3 |     COPY requirements.txt .
   4 | >>> RUN pip install --no-cache-dir -r requirements.txt
   5 |     COPY . .
   6 |     CMD ["python", "-m", "edit_container"]
--------------------
ERROR: failed to solve: process "/bin/sh -c pip install --no-cache-dir -r requirements.txt" did not complete successfully: exit code: 1
""".splitlines()

# A COPY of a file the context lacks: the step prints nothing, BuildKit's reason is the last line.
COPY_FAILS = """\
#6 [2/3] WORKDIR /app
#6 CACHED

#7 [3/3] COPY app.py .
#7 ERROR: failed to calculate checksum of ref 6f1b0c1e-8e4e-4b8e-9d0a-4a0d5e4b7c11::kq1x0r2q5v3m: "/app.py": not found
------
 > [3/3] COPY app.py .:
------
Dockerfile:3
--------------------
   1 |     FROM alpine:3.19
   2 |     WORKDIR /app
   3 | >>> COPY app.py .
   4 |
--------------------
ERROR: failed to solve: failed to compute cache key: failed to calculate checksum of ref 6f1b0c1e-8e4e-4b8e-9d0a-4a0d5e4b7c11::kq1x0r2q5v3m: "/app.py": not found
""".splitlines()


def test_a_failed_buildkit_step_shows_its_own_output_and_buildkits_reason_not_the_dockerfile_around_it():
    message = str(BuildFailed("/work/app", PIP_FAILS[-40:]))  # run_tool keeps docker's last 40 lines

    assert "No matching distribution found for flask==9.9" in message
    assert "Could not find a version that satisfies the requirement flask==9.9" in message
    assert "> [4/5] RUN pip install --no-cache-dir -r requirements.txt" in message  # which step
    assert message.rstrip().endswith('ERROR: failed to solve: process "/bin/sh -c pip install --no-cache-dir -r '
                                     'requirements.txt" did not complete successfully: exit code: 1')
    assert "Dockerfile:4" in message and ">>> RUN pip install" in message  # where, in a line
    assert "COPY . ." not in message and "CMD [" not in message  # not the Dockerfile around it
    assert "--------------------" not in message


def test_a_failed_buildkit_step_that_printed_nothing_shows_buildkits_reason_and_the_step():
    message = str(BuildFailed("/work/app", COPY_FAILS))

    assert "> [3/3] COPY app.py ." in message
    assert message.rstrip().endswith('"/app.py": not found')
    assert "WORKDIR /app" not in message  # the snippet's neighbours


def test_the_legacy_builders_output_is_shown_as_it_ends():
    tail = ["Step 1/2 : FROM scratch", " --->", "Step 2/2 : COPY no-such-file.txt /",
            "COPY failed: file not found in build context or excluded by .dockerignore: stat no-such-file.txt: "
            "file does not exist"]
    assert str(BuildFailed("/work/app", tail)).endswith("\n" + "\n".join(tail))


def test_a_dockerfile_named_otherwise_is_named_where_the_step_failed():
    tail = [line.replace("Dockerfile:3", "deploy/edit.Dockerfile:3") for line in COPY_FAILS]
    assert "deploy/edit.Dockerfile:3: 3 | >>> COPY app.py ." in str(BuildFailed("/work/app", tail))


def test_a_failure_of_no_step_shows_dockers_last_lines():
    tail = ["#1 [internal] load build definition from Dockerfile", "#1 transferring dockerfile: 2B done",
            "#1 DONE 0.0s",
            "ERROR: failed to solve: failed to read dockerfile: open Dockerfile: no such file or directory"]
    assert str(BuildFailed("/work/app", tail)).endswith("\n" + "\n".join(tail))
