"""Prefect flows over rollway's library."""

from flows.run_log import send_to_run_logs

# rollway/ may not import Prefect, and Prefect sends a logger's records to a run's log only when
# PREFECT_LOGGING_EXTRA_LOGGERS names it: rollway's own warnings reached stderr and never the run.
send_to_run_logs()
