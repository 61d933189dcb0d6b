"""``python -m rollway.cli``: the ``rollway`` command, from whichever checkout is on the path."""

from rollway.cli import main

# Guarded: a tool that imports every module (the exception-pickling test walks the package) must
# not run the command.
if __name__ == "__main__":
    main()
