"""Deleting an organization: refused while it owns anything, unless forced (decision 0018)."""

from __future__ import annotations

from dataclasses import dataclass

from packmatch.errors import Conflict, NotFound
from packmatch.logging import get_logger
from packmatch.store import organizations as store
from packmatch.store.db import Database

log = get_logger(__name__)


@dataclass(frozen=True)
class Deleted:
    name: str
    owned: dict[str, int]


class Organizations:
    def __init__(self, db: Database) -> None:
        self.db = db

    def delete(self, name: str, *, force: bool = False) -> Deleted:
        """Delete the organization named so; without `force`, only if it owns nothing at all."""
        with self.db.transaction() as conn:
            organization_id = store.find_for_update(conn, name.strip())
            if organization_id is None:
                raise NotFound(f"no organization named '{name}'")
            owned = store.owned(conn, organization_id)
            if owned and not force:
                listing = ", ".join(f"{count} {table.replace('_', ' ')}" for table, count in owned.items())
                raise Conflict(f"organization '{name}' owns {listing}; `--force` deletes it with all of them")
            store.delete_organization(conn, organization_id)
        log.info("organization.deleted", organization_id=str(organization_id), **owned)
        return Deleted(name, owned)
