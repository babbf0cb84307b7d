"""Request bodies. Responses are plain dicts built by `presenters` (documented in OpenAPI by examples)."""

from __future__ import annotations

import math
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from packmatch.domain.models import FieldMapping, PassCriteria, Presence, Strategy

MAX_ROWS_PER_TYPE = 1000
MAX_SLOTS = 50
MAX_MAPPINGS = 100

Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
DocumentType = Annotated[str, StringConstraints(pattern=r"^[a-z0-9_]{1,64}$")]
Identifier = Annotated[str, StringConstraints(min_length=1, max_length=200)]


def _has_non_finite(value: Any) -> bool:
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, dict):
        return any(_has_non_finite(v) for v in value.values())
    if isinstance(value, list):
        return any(_has_non_finite(v) for v in value)
    return False


def _finite(value: dict[str, Any]) -> dict[str, Any]:
    """Python's JSON parser accepts NaN and ±Infinity; JSON (and PostgreSQL) do not."""
    if _has_non_finite(value):
        raise ValueError("NaN and Infinity are not JSON numbers.")
    return value


JsonObject = Annotated[dict[str, Any], AfterValidator(_finite)]


class Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ReferenceDataCreate(Body):
    name: Name
    rows: list[JsonObject] = Field(max_length=5_000_000)


class FieldMappingIn(Body):
    source: Identifier
    target: Identifier
    strategy: Strategy
    weight: float = Field(gt=0, allow_inf_nan=False)
    options: dict[str, Any] = Field(default_factory=dict)

    def to_domain(self) -> FieldMapping:
        return FieldMapping(**self.model_dump())


class MatchingConfigCreate(Body):
    name: Name
    reference_data_id: str
    field_mappings: list[FieldMappingIn] = Field(min_length=1, max_length=MAX_MAPPINGS)
    threshold: float = Field(default=0.85, ge=0.0, le=1.0, allow_inf_nan=False)


class SlotIn(Body):
    document_type: DocumentType
    matching_config_id: str
    presence: Presence


class PassCriteriaIn(Body):
    all_required_matched: bool = True
    min_confidence: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    allow_review_on_expected: bool = True

    def to_domain(self) -> PassCriteria:
        return PassCriteria(**self.model_dump())


class PackageConfigCreate(Body):
    name: Name
    document_type_configs: list[SlotIn] = Field(min_length=1, max_length=MAX_SLOTS)
    pass_criteria: PassCriteriaIn = Field(default_factory=PassCriteriaIn)


class InputRowIn(Body):
    document_id: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    extraction_row_id: Annotated[str, StringConstraints(max_length=200)] | None = None
    values: JsonObject


class PackageRunCreate(Body):
    package_config_id: str
    input_documents: dict[str, Annotated[list[InputRowIn], Field(max_length=MAX_ROWS_PER_TYPE)]]
