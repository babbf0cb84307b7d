"""One error hierarchy for the whole service.

The edges translate it: the API into the SPEC error envelope, the worker into retry or no-retry.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FieldProblem:
    field: str
    message: str


class PackmatchError(Exception):
    """Base of every error packmatch raises on purpose."""

    code = "internal_error"

    def __init__(self, message: str, *, details: list[FieldProblem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []


class ValidationFailed(PackmatchError):
    code = "validation_error"


class NotFound(PackmatchError):
    code = "not_found"


class Conflict(PackmatchError):
    code = "conflict"


class Unauthorized(PackmatchError):
    code = "unauthorized"


class InsufficientScope(PackmatchError):
    code = "insufficient_scope"


class PayloadTooLarge(PackmatchError):
    code = "payload_too_large"


class Unavailable(PackmatchError):
    code = "unavailable"


class TransientError(PackmatchError):
    """A failure worth retrying: the database or broker was briefly unreachable."""

    code = "unavailable"


class PermanentError(PackmatchError):
    """A failure that retrying cannot fix: bad data, a dataset gone underneath a run."""


@dataclass
class ProblemList:
    """Collects field problems so a validator can report all of them at once."""

    problems: list[FieldProblem] = field(default_factory=list)

    def add(self, field_path: str, message: str) -> None:
        self.problems.append(FieldProblem(field_path, message))

    def raise_if_any(self, message: str = "The request is invalid.") -> None:
        if self.problems:
            raise ValidationFailed(message, details=list(self.problems))
