"""One error hierarchy for nnlab.

``SpecError`` is bad input (exit code 2); ``TrialFailed`` is a single run that failed
and is recorded and skipped; ``FatalError`` stops a whole command (exit code 1).
"""

from __future__ import annotations


class NnlabError(Exception):
    """Base class of every error nnlab raises on purpose."""


class SpecError(NnlabError, ValueError):
    """Bad input: a spec, an override, a name or a path. Exit code 2.

    ``str(err)`` is one line: ``FILE:LINE: key: rule, but got VALUE``.
    """

    def __init__(self, message: str, *, file: str | None = None, line: int | None = None,
                 key: str | None = None) -> None:
        self.file = file
        self.line = line
        self.key = key
        self.detail = message
        super().__init__(self._format())

    def _format(self) -> str:
        prefix = ""
        if self.file is not None:
            prefix = f"{self.file}:{self.line or 1}: "
        key = f"{self.key}: " if self.key else ""
        return f"{prefix}{key}{self.detail}".replace("\n", " ")


class TrialFailed(NnlabError):
    """One run failed; it is recorded as failed and a sweep goes on."""


class FatalError(NnlabError):
    """A runtime failure that stops the command (exit code 1)."""
