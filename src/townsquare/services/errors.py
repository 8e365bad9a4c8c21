"""The one error the services raise for bad input: the CLI prints it as a one-line error (exit 2),
the API answers 400 with ``param`` set to ``field``.

    >>> e = InputError("expected a duration like 30m, 1h or 2d, got 'soon'", "window")
    >>> (e.field, str(e))
    ('window', "expected a duration like 30m, 1h or 2d, got 'soon'")
"""
from __future__ import annotations


class InputError(ValueError):
    """A value a caller gave that cannot be used; ``field`` names the flag or parameter."""

    def __init__(self, message: str, field: str):
        super().__init__(message)
        self.field = field
