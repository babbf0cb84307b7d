"""The page's verdict words (`evidence.js`) agree with the engine's verdict on every slot shape."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest

from packmatch.domain.models import PassCriteria, Presence, SlotResult, SlotStatus
from packmatch.engine.verdict import decide
from tests.browser.conftest import Live

pytestmark = pytest.mark.postgres

CRITERIA = [
    PassCriteria(all_required_matched=a, min_confidence=m, allow_review_on_expected=e)
    for a, m, e in itertools.product([True, False], [0.0, 0.8], [True, False])
]
SLOTS = [
    SlotResult(
        document_type="t",
        matching_config_id=uuid.uuid4(),
        matching_run_id=None,
        presence=presence,
        document_found=status not in {SlotStatus.MISSING, SlotStatus.SKIPPED},
        status=status,
        confidence=confidence,
    )
    for presence, status, confidence in itertools.product(Presence, SlotStatus, [None, 0.5, 0.9])
]
CALL = """
const [slots, criteria, done] = arguments;
import("/review/static/evidence.js").then((m) => done(
  criteria.map((c) => slots.map((s) => m.slotOutcome(s, c)[0]))));
"""


def test_every_slot_outcome_the_page_states_is_the_engines(browser: Any, live: Live) -> None:
    browser.get(f"{live.url}/review")
    slots = [slot.model_dump(mode="json") for slot in SLOTS]
    criteria = [c.model_dump(mode="json") for c in CRITERIA]
    page = browser.execute_async_script(CALL, slots, criteria)
    engine = [[decide([slot], c).outcomes[0].outcome.value for slot in SLOTS] for c in CRITERIA]
    assert page == engine
