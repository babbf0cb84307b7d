"""Public ids: a type prefix plus a UUID (SPEC §2). Internally every id is a plain UUID."""

from __future__ import annotations

import re
import uuid
from enum import StrEnum

from packmatch.errors import FieldProblem, ValidationFailed


class Kind(StrEnum):
    REFERENCE_DATA = "ref"
    MATCHING_CONFIG = "mc"
    PACKAGE_CONFIG = "pkg"
    PACKAGE_RUN = "run"
    MATCHING_RUN = "mr"
    MATCH_RESULT = "mres"
    WEBHOOK = "whk"
    WEBHOOK_DELIVERY = "whd"
    REQUEST = "req"
    API_KEY = "key"
    REVIEW = "rev"
    EVALUATION = "eval"


_LABELS = {
    Kind.REFERENCE_DATA: "reference data",
    Kind.MATCHING_CONFIG: "matching config",
    Kind.PACKAGE_CONFIG: "config",
    Kind.PACKAGE_RUN: "run",
    Kind.MATCHING_RUN: "matching run",
    Kind.MATCH_RESULT: "match result",
    Kind.WEBHOOK: "webhook",
    Kind.WEBHOOK_DELIVERY: "delivery",
    Kind.REQUEST: "request",
    Kind.API_KEY: "API key",
    Kind.REVIEW: "review",
    Kind.EVALUATION: "evaluation",
}


# The canonical 8-4-4-4-12 form only: uuid.UUID() alone also accepts braces, "urn:uuid:" and
# misplaced hyphens, which are not ids we ever issue.
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def format_id(kind: Kind, value: uuid.UUID) -> str:
    return f"{kind.value}_{value}"


def parse_id(kind: Kind, text: str, *, field: str = "id") -> uuid.UUID:
    """Accept `<prefix>_<uuid>` or a bare UUID; anything else is a validation error."""
    prefix = f"{kind.value}_"
    raw = text[len(prefix) :] if text.startswith(prefix) else text
    if _UUID.fullmatch(raw) is None:
        message = f"Invalid {_LABELS[kind]} ID format. Must be a UUID."
        raise ValidationFailed(message, details=[FieldProblem(field, message)])
    return uuid.UUID(raw)
