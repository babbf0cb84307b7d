"""Matching configs and package configs."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import ValidationError

from packmatch.domain.models import FieldMapping, MatchingConfig, PackageConfig, PassCriteria, Slot
from packmatch.errors import NotFound, ProblemList
from packmatch.services.ports import Clock, utcnow
from packmatch.store import configs as store
from packmatch.store import reference_data as datasets
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

MATCHING_NOT_FOUND = "No matching config with this ID exists for your organization."
PACKAGE_NOT_FOUND = "No package config with this ID exists for your organization."


@dataclass(frozen=True)
class MatchingConfigInput:
    name: str
    reference_data_id: uuid.UUID
    field_mappings: Sequence[FieldMapping]
    threshold: float = 0.85


@dataclass(frozen=True)
class PackageConfigInput:
    name: str
    slots: Sequence[Slot]
    pass_criteria: PassCriteria


def check_mappings(mappings: Sequence[FieldMapping], columns: set[str]) -> None:
    """Every target must be a dataset column and every options object valid for its strategy."""
    problems = ProblemList()
    for i, mapping in enumerate(mappings):
        if mapping.target not in columns:
            problems.add(
                f"field_mappings[{i}].target",
                f"'{mapping.target}' is not a column of the reference data.",
            )
        try:
            mapping.parsed_options()
        except ValidationError as exc:
            for err in exc.errors():
                where = ".".join(str(p) for p in err["loc"])
                problems.add(f"field_mappings[{i}].options.{where}", err["msg"])
    problems.raise_if_any("The matching config is invalid.")


class Configs:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create_matching(self, organization_id: uuid.UUID, data: MatchingConfigInput) -> MatchingConfig:
        now = self.clock()
        with self.db.transaction() as conn:
            dataset = datasets.get_dataset(conn, organization_id, data.reference_data_id)
            if dataset is None:
                raise NotFound("No reference data with this ID exists for your organization.")
            check_mappings(data.field_mappings, {c.name for c in dataset.columns})
            config = MatchingConfig(
                id=uuid.uuid4(),
                organization_id=organization_id,
                name=data.name,
                reference_data_id=data.reference_data_id,
                field_mappings=tuple(data.field_mappings),
                threshold=data.threshold,
                version=1,
                created_at=now,
                updated_at=now,
            )
            store.insert_matching_config(conn, config)
        return config

    def get_matching(self, organization_id: uuid.UUID, config_id: uuid.UUID) -> MatchingConfig:
        with self.db.transaction() as conn:
            config = store.get_matching_config(conn, organization_id, config_id)
        if config is None:
            raise NotFound(MATCHING_NOT_FOUND)
        return config

    def list_matching(self, organization_id: uuid.UUID, request: PageRequest) -> Page[MatchingConfig]:
        with self.db.transaction() as conn:
            return store.list_matching_configs(conn, organization_id, request)

    def create_package(self, organization_id: uuid.UUID, data: PackageConfigInput) -> PackageConfig:
        now = self.clock()
        with self.db.transaction() as conn:
            wanted = {slot.matching_config_id for slot in data.slots}
            found = store.get_matching_configs(conn, organization_id, wanted)
            missing = [s.matching_config_id for s in data.slots if s.matching_config_id not in found]
            if missing:
                raise NotFound(f"No matching config with ID mc_{missing[0]} exists for your organization.")
            config = PackageConfig(
                id=uuid.uuid4(),
                organization_id=organization_id,
                name=data.name,
                slots=tuple(data.slots),
                pass_criteria=data.pass_criteria,
                version=1,
                created_at=now,
                updated_at=now,
            )
            store.insert_package_config(conn, config)
        return config

    def get_package(self, organization_id: uuid.UUID, config_id: uuid.UUID) -> PackageConfig:
        with self.db.transaction() as conn:
            config = store.get_package_config(conn, organization_id, config_id)
        if config is None:
            raise NotFound(PACKAGE_NOT_FOUND)
        return config

    def list_packages(self, organization_id: uuid.UUID, request: PageRequest) -> Page[PackageConfig]:
        with self.db.transaction() as conn:
            return store.list_package_configs(conn, organization_id, request)
