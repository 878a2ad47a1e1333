"""The one exception type for user mistakes.

A `SpotrtError` carries one line for the user: the thing, what was found and what was expected.
The CLI prints it without a traceback and exits 1; everything else is a bug and keeps its traceback.
"""


class SpotrtError(Exception):
    """A user-facing error: one line naming the thing, what was found and what was expected."""
