"""One error hierarchy for nnlab.

``SpecError`` is bad input (exit code 2); ``TrialFailed`` is a single run that failed
and is recorded and skipped; ``FatalError`` stops a whole command (exit code 1);
``StoreFailed`` is the fatal error of a store that failed mid-command (a full disk, a
database unreachable past its retries): what finished is kept and the command resumes.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator


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


class StoreFailed(FatalError):
    """A store or its disk failed mid-command: stop, keep every finished run, resume later.

    Not a trial's failure: the run it interrupted is ended KILLED and its slot queued again.
    """


NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)
NO_SPACE_TEXTS = ("no space left on device", "database or disk is full", "disk quota exceeded")


def exception_chain(exc: BaseException) -> Iterator[BaseException]:
    """``exc``, then what caused it (``__cause__``, else ``__context__``), and so on; each once."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def no_space(exc: BaseException) -> BaseException | None:
    """The exception in ``exc``'s chain that says a disk is full (ENOSPC, EDQUOT, SQLite's "database or
    disk is full"), else None."""
    for current in exception_chain(exc):
        if isinstance(current, OSError) and current.errno in NO_SPACE_ERRNOS:
            return current
        if any(text in str(current).lower() for text in NO_SPACE_TEXTS):
            return current
    return None


# TensorFlow's out-of-memory error, and the texts its CUDA, cuDNN and cuBLAS failures carry
DEVICE_FAULT_CLASSES = ("ResourceExhaustedError",)
DEVICE_FAULT_TEXTS = ("out of memory", "oom when allocating", "failed to allocate", "cuda_error", "cudnn_status",
                      "cublas_status", "cuda runtime error", "an illegal memory access")


def device_fault(exc: BaseException) -> BaseException | None:
    """The exception in ``exc``'s chain that says the accelerator failed the run (out of device memory,
    a CUDA, cuDNN or cuBLAS error), else None: a fault of the machine, not an outcome of the run."""
    for current in exception_chain(exc):
        if type(current).__name__ in DEVICE_FAULT_CLASSES:
            return current
        if any(text in str(current).lower() for text in DEVICE_FAULT_TEXTS):
            return current
    return None


class DeviceFault(FatalError):
    """The accelerator failed under a run (see ``device_fault``): the run is ended KILLED, its slot goes
    back to the queue, and the worker stops so that a fresh one starts with its memory released."""


def no_space_message(exc: BaseException, doing: str) -> str:
    """One line for a full disk: what was being done, where, and how to go on."""
    full = no_space(exc) or exc
    path = (full.filename2 or full.filename) if isinstance(full, OSError) else None  # copies: the target
    where = f" ({path})" if path else ""
    return (f"no space left on device while {doing}{where}; every finished run is kept: free some space, "
            f"then run the same command again to resume")
