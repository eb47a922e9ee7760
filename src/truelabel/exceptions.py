"""All errors truelabel raises.

Every error derives from :class:`TruelabelError`; specific errors also derive from the
builtin they replace, so ``except ValueError`` keeps working for callers that do not
know truelabel.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "DataFormatError",
    "MissingDependencyError",
    "NotFittedError",
    "TruelabelError",
    "TruelabelWarning",
    "ValidationError",
]


class TruelabelError(Exception):
    """Root of every error raised by truelabel."""


class TruelabelWarning(UserWarning):
    """Something truelabel computed is likely misleading (too few items per class, an
    implausible noise estimate, label variants that look like one class, ...).

    The message says what was seen, why it matters and what to do. Filter these with
    ``warnings.filterwarnings("ignore", category=truelabel.TruelabelWarning)``.
    """


class ValidationError(TruelabelError, ValueError):
    """An argument has the wrong type, shape or value.

    The message names the argument, the bad value, what was expected and how to fix it.
    """

    def __init__(self, argument: str, problem: str, fix: str | None = None) -> None:
        self.argument = argument
        self.problem = problem
        self.fix = fix
        message = f"{argument}: {problem}"
        if fix:
            message += f"; {fix}"
        super().__init__(message)

    def __reduce__(self) -> tuple[Any, ...]:
        # pickled with its three parts (a task's error on a worker process comes back whole)
        return (type(self), (self.argument, self.problem, self.fix), self.__dict__)


class DataFormatError(ValidationError):
    """A file or table cannot be read as the data truelabel expects."""


class NotFittedError(TruelabelError, ValueError, AttributeError):
    """A method that needs a fitted estimator was called before ``fit``."""


class MissingDependencyError(TruelabelError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        self.package = package
        self.extra = extra
        self.purpose = purpose
        super().__init__(
            f"{purpose} needs the optional package {package!r}; "
            f"install it with: pip install 'truelabel[{extra}]'"
        )

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), (self.package, self.extra, self.purpose), self.__dict__)


def warn_at_caller(message: str, category: type[Warning] = TruelabelWarning) -> None:
    """``warnings.warn`` attributed to the first frame outside truelabel: the user's line
    that called into the package, whatever the depth of the call chain inside it (a fixed
    ``stacklevel`` points into truelabel when the same code is reached by different paths).
    Python 3.12's ``skip_file_prefixes`` does this; 3.11 does not have it."""
    import os
    import sys
    import warnings

    package = os.path.dirname(os.path.abspath(__file__)) + os.sep
    frame = sys._getframe(1)
    level = 2  # stacklevel 2 = the frame that called this function
    while frame.f_back is not None and os.path.abspath(frame.f_code.co_filename).startswith(
        package
    ):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)
