"""validate_deployment as `rollway up` serves it: its default spec checks the stand-in app the
serve script was handed (serve_process's ``validation_url``), not Webordinary's real addresses."""

from __future__ import annotations

import httpx
import pytest
from prefect.deployments import run_deployment

from deployments.serve import deployment_path
from rollway.validation import ValidationSpec
from tests.integration.conftest import Live

pytestmark = pytest.mark.integration

# Wall seconds: a flow-run process starts in a few seconds; the checks take well under one.
RUN_TIMEOUT = 150


def test_validate_deployment_by_default_checks_the_app_it_was_served_with(live: Live) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        deployment = client.read_deployment_by_name(deployment_path("validate_deployment"))
    assert "spec" in deployment.parameters, (
        "validate_deployment was served without a default spec: the `served` fixture "
        "(tests/integration/conftest.py) must hand serve_process a validation_url")
    spec = ValidationSpec.model_validate(deployment.parameters["spec"])
    assert spec.health_url.startswith("http://127.0.0.1:")
    assert httpx.get(spec.health_url, timeout=10).status_code == 200  # the served app, running
    # No parameters: the run takes the deployment's defaults, as a Quick run from the UI does.
    run = run_deployment(deployment_path("validate_deployment"), timeout=RUN_TIMEOUT)
    assert run.state is not None and run.state.is_completed(), (
        f"{run.state}\n--- serve log ---\n{live.log.read_text()[-4000:]}")
