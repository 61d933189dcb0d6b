"""``python -m rollway.cli``: the ``rollway`` command, from whichever checkout is on the path."""

from rollway.cli import main

main()
