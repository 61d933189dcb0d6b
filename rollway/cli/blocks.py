"""Names of the blocks `rollway up` and `rollway demo` save, shared by every command.

A module of its own, free of imports, so that `rollway --help` does not pay for Prefect.
"""

TARGETS_BLOCK = "rollway-targets"
CREDENTIALS_BLOCK = "rollway-embedded"
