"""rollway: progressive delivery for ECS Fargate behind an ALB.

The library itself never imports Prefect (except ``rollway.cli``), so its decision logic and
adapters can be driven by any orchestrator; ``flows/``, ``tasks/`` and ``blocks/`` bind it to Prefect.
"""

__version__ = "0.1.0"
