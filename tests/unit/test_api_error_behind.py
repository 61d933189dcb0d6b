"""A command's error raised from the Prefect API's is said in one line, the API's error as ApiError
says it: ApiError is raised in place of the httpx error, with no cause (its words quote the URL
asked, PREFECT_API_URL's password with it), and behind it the command found no API error."""

from __future__ import annotations

import httpx

import rollway.cli.ops as ops
from rollway.api_error import ApiError


def test_an_error_raised_from_an_api_error_is_said_as_the_api_unreachable_without_its_password(capsys):
    request = httpx.Request("GET", "https://rollway:s3cr3t@prefect.internal/api/flow_runs/filter")
    refused = ApiError.of(httpx.HTTPStatusError(f"Server error '500 Internal Server Error' for url '{request.url}'",
                                                request=request, response=httpx.Response(500, request=request)))

    @ops.reporting
    def command() -> int:
        raise RuntimeError("the run could not be read") from refused

    assert command() == 1
    said = capsys.readouterr().err
    assert said.startswith("error: cannot reach the Prefect API (") and "Traceback" not in said, said
    assert "s3cr3t" not in said and "'https://rollway:***@prefect.internal/api/flow_runs/filter'" in said, said
