"""Matching configs and package configs: create, read, replace (PUT) and delete.

A replacement bumps `version`. Runs are unaffected by later edits and deletes: each run holds a
snapshot of its configs, taken when it was accepted.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy.engine import Connection

from packmatch.domain.ids import Kind, format_id
from packmatch.domain.models import FieldMapping, MatchingConfig, PackageConfig, PassCriteria, Slot
from packmatch.errors import Conflict, FieldProblem, NotFound, ProblemList, ValidationFailed
from packmatch.logging import get_logger
from packmatch.services.ports import Clock, utcnow
from packmatch.store import configs as store
from packmatch.store import reference_data as datasets
from packmatch.store.db import Database
from packmatch.store.pagination import Page, PageRequest

log = get_logger(__name__)

MATCHING_NOT_FOUND = "No matching config with this ID exists for your organization."
PACKAGE_NOT_FOUND = "No package config with this ID exists for your organization."
REFERENCE_DATA_NOT_FOUND = "No reference data with this ID exists for your organization."
NAMED_IN_CONFLICT = 5  # package configs named in a 409; the message counts the rest


@dataclass(frozen=True)
class MatchingConfigInput:
    name: str
    reference_data_id: uuid.UUID
    field_mappings: Sequence[FieldMapping]
    threshold: float = 0.85


@dataclass(frozen=True)
class MatchingConfigReplacement:
    """A PUT: `reference_data_id` may be repeated (it must then equal the current one) or left out."""

    name: str
    field_mappings: Sequence[FieldMapping]
    threshold: float = 0.85
    reference_data_id: uuid.UUID | None = None


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
                where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in err["loc"])
                problems.add(f"field_mappings[{i}].options{where}", err["msg"])
    problems.raise_if_any("The matching config is invalid.")


def check_same_reference_data(current: MatchingConfig, wanted: uuid.UUID | None) -> None:
    if wanted is None or wanted == current.reference_data_id:
        return
    current_id = format_id(Kind.REFERENCE_DATA, current.reference_data_id)
    message = (
        f"reference_data_id cannot change: this matching config stays with {current_id}. "
        "Create a new matching config for other reference data."
    )
    detail = f"cannot change; this matching config uses {current_id}"
    raise ValidationFailed(message, details=[FieldProblem("reference_data_id", detail)])


def check_slots_found(slots: Sequence[Slot], found: Mapping[uuid.UUID, MatchingConfig]) -> None:
    """Every slot's matching config must exist in the organization: else 404 naming the first."""
    missing = [s.matching_config_id for s in slots if s.matching_config_id not in found]
    if missing:
        shown = format_id(Kind.MATCHING_CONFIG, missing[0])
        raise NotFound(f"No matching config with ID {shown} exists for your organization.")


def in_use_message(users: Sequence[uuid.UUID]) -> str:
    named = ", ".join(format_id(Kind.PACKAGE_CONFIG, u) for u in users[:NAMED_IN_CONFLICT])
    more = f" and {len(users) - NAMED_IN_CONFLICT} more" if len(users) > NAMED_IN_CONFLICT else ""
    noun = "package config" if len(users) == 1 else "package configs"
    return (
        f"This matching config is used by {len(users)} {noun} ({named}{more}); "
        "remove it from their document_type_configs or delete them first."
    )


def _lock_slot_configs(conn: Connection, organization_id: uuid.UUID, slots: Sequence[Slot]) -> None:
    """Every slot's matching config exists for the organization; key-share locked until commit."""
    wanted = {slot.matching_config_id for slot in slots}
    found = store.get_matching_configs(conn, organization_id, wanted, lock="key share")
    check_slots_found(slots, found)


class Configs:
    def __init__(self, db: Database, clock: Clock = utcnow) -> None:
        self.db = db
        self.clock = clock

    def create_matching(self, organization_id: uuid.UUID, data: MatchingConfigInput) -> MatchingConfig:
        now = self.clock()
        with self.db.transaction() as conn:
            dataset = datasets.get_dataset(conn, organization_id, data.reference_data_id, lock=True)
            if dataset is None:
                raise NotFound(REFERENCE_DATA_NOT_FOUND)
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

    def replace_matching(
        self, organization_id: uuid.UUID, config_id: uuid.UUID, data: MatchingConfigReplacement
    ) -> MatchingConfig:
        with self.db.transaction() as conn:
            current = store.get_matching_config(conn, organization_id, config_id, lock="no key update")
            if current is None:
                raise NotFound(MATCHING_NOT_FOUND)
            check_same_reference_data(current, data.reference_data_id)
            dataset = datasets.get_dataset(conn, organization_id, current.reference_data_id)
            columns = set() if dataset is None else {c.name for c in dataset.columns}
            check_mappings(data.field_mappings, columns)
            config = MatchingConfig(
                id=current.id,
                organization_id=organization_id,
                reference_data_id=current.reference_data_id,
                name=data.name,
                field_mappings=tuple(data.field_mappings),
                threshold=data.threshold,
                version=current.version + 1,
                created_at=current.created_at,
                updated_at=self.clock(),
            )
            version = store.update_matching_config(conn, config)
        if version is None:  # deleted meanwhile (SQLite reads do not lock)
            raise NotFound(MATCHING_NOT_FOUND)
        return config.model_copy(update={"version": version})

    def delete_matching(self, organization_id: uuid.UUID, config_id: uuid.UUID) -> None:
        with self.db.transaction() as conn:
            if store.get_matching_config(conn, organization_id, config_id, lock="update") is None:
                raise NotFound(MATCHING_NOT_FOUND)
            users = store.package_configs_using(conn, config_id)
            if users:
                raise Conflict(in_use_message(users))
            store.delete_matching_config(conn, organization_id, config_id)

    def create_package(self, organization_id: uuid.UUID, data: PackageConfigInput) -> PackageConfig:
        now = self.clock()
        with self.db.transaction() as conn:
            _lock_slot_configs(conn, organization_id, data.slots)
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

    def replace_package(
        self, organization_id: uuid.UUID, config_id: uuid.UUID, data: PackageConfigInput
    ) -> PackageConfig:
        with self.db.transaction() as conn:
            current = store.get_package_config(conn, organization_id, config_id, lock="no key update")
            if current is None:
                raise NotFound(PACKAGE_NOT_FOUND)
            _lock_slot_configs(conn, organization_id, data.slots)
            config = PackageConfig(
                id=current.id,
                organization_id=organization_id,
                name=data.name,
                slots=tuple(data.slots),
                pass_criteria=data.pass_criteria,
                version=current.version + 1,
                created_at=current.created_at,
                updated_at=self.clock(),
            )
            version = store.update_package_config(conn, config)
        if version is None:  # deleted meanwhile (SQLite reads do not lock)
            raise NotFound(PACKAGE_NOT_FOUND)
        return config.model_copy(update={"version": version})

    def delete_package(self, organization_id: uuid.UUID, config_id: uuid.UUID) -> None:
        """Delete a package config and its runs. A worker that later finds a run gone does nothing."""
        with self.db.transaction() as conn:
            runs = store.delete_package_config(conn, organization_id, config_id)
        if runs is None:
            raise NotFound(PACKAGE_NOT_FOUND)
        log.info("package_config.deleted", package_config_id=str(config_id), runs_deleted=runs)
