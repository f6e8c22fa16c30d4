"""User-facing error types.

A user mistake is never a traceback: every problem found in the catalog becomes a
:class:`CatalogError` that knows the file, line and column to blame. Loading and
validation collect them all and raise one :class:`CatalogErrors`, so a single run shows
every mistake at once. The CLI maps that to exit code 2.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Location:
    """A 1-based position in a repository-relative file."""

    path: str
    line: int = 1
    col: int = 1

    def __str__(self) -> str:
        return f"{self.path}:{self.line}:{self.col}"


@dataclass(frozen=True, order=True)
class CatalogError:
    """One mistake in the user's input, printed as ``path:line:col: message``."""

    location: Location
    message: str

    def __str__(self) -> str:
        return f"{self.location}: {self.message}"


class CatalogErrors(Exception):
    """All the mistakes of one run; raised once, after everything was checked."""

    def __init__(self, errors: Iterable[CatalogError], root_causes: Iterable[CatalogError] = ()) -> None:
        first = sorted(set(root_causes))
        self.errors = first + sorted(set(errors) - set(first))
        #: How many of :attr:`errors` (at the front) are root causes: a broken rule at the
        #: line that was changed, listed before the structural consequences it has.
        self.root_cause_count = len(first)
        super().__init__("\n".join(str(e) for e in self.errors))

    def __reduce__(self) -> tuple[type, tuple[list[CatalogError], list[CatalogError]]]:
        # Rebuild from the errors (not the message) when crossing a process boundary.
        return (type(self), (self.errors[self.root_cause_count :], self.errors[: self.root_cause_count]))


class ErrorSink:
    """Collects errors from many independent checks, then raises them together."""

    def __init__(self) -> None:
        self.errors: list[CatalogError] = []

    def add(self, location: Location, message: str) -> None:
        self.errors.append(CatalogError(location, message))

    def extend(self, errors: Iterable[CatalogError]) -> None:
        self.errors.extend(errors)

    def raise_if_any(self) -> None:
        if self.errors:
            raise CatalogErrors(self.errors)


class UsageError(Exception):
    """A command was asked for something that cannot be done (unknown tenant, bad ref).

    Not a catalog mistake, so it has no location; the CLI still exits 2 without a traceback.
    """
