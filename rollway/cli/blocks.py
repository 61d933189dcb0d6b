"""Names of the blocks `rollway up` and `rollway demo` save, and of rollway's deployments, shared by
every command.

A module of its own, free of imports, so that `rollway --help` does not pay for Prefect.
"""

TARGETS_BLOCK = "rollway-targets"
CREDENTIALS_BLOCK = "rollway-embedded"

DEPLOYMENT = "rollway"
"""Name of every rollway deployment, served (deployments/serve.py, `rollway up`) or deployed from
deployments/prefect.yaml: a person and the commands address one as ``<flow name>/rollway``. rollway's
name, never the service's: that is a default of the targets block."""


def deployment_path(flow_name: str) -> str:
    """``<flow name>/<deployment name>``, as ``run_deployment`` and the UI address a deployment."""
    return f"{flow_name}/{DEPLOYMENT}"
