"""User errors: what a person fixes (a params key, a missing file, a refused key), never a traceback.

Every stage script runs its `main` through `run_stage`: a UserError is printed as `<stage>: <message>`, the message
naming the key or file and the fix, and the process exits with status 2. Anything else is a bug and keeps its
traceback. Each concrete error is also the built-in exception it refines (a missing file is a FileNotFoundError),
so code that catches those keeps working.
"""

from __future__ import annotations

import sys
from collections.abc import Callable


class UserError(Exception):
    """A problem in the user's params, data or environment; the message names the key or file and says the fix."""


class BadValue(UserError, ValueError):
    """A value in params or in the data that cannot be used as it is."""


class NotFound(UserError, FileNotFoundError):
    """A file, folder, glob or dataset that params name and that is not there."""


class IsFolder(UserError, IsADirectoryError):
    """A folder where params must name a file."""


class Denied(UserError, PermissionError):
    """Access refused: missing or wrong credentials."""


class Unreachable(UserError, ConnectionError):
    """A server or endpoint that params name and that does not answer."""


def run_stage(name: str, main: Callable[[], None]) -> None:
    """Run a stage's `main`; a UserError becomes `<name>: <message>` on stderr and exit status 2."""
    try:
        main()
    except UserError as err:
        print(f"{name}: {err}", file=sys.stderr)
        raise SystemExit(2) from None
