"""What a message is about: its first argument, a run id except for the actors named here.

One map for the log context of a message (`worker/middleware.py`) and for the dead letters
`packmatch dead-letters` lists (`worker/dead_letters.py`), so both name the same id.
"""

from __future__ import annotations

from typing import Any

from packmatch.logging import PUBLIC_ID_KEYS, public_id

SUBJECT_KEYS = {"packmatch.deliver_webhook": "delivery_id", "packmatch.evaluate": "evaluation_id"}


def subject_key(actor_name: str) -> str:
    """The log key of a message's first argument."""
    return SUBJECT_KEYS.get(actor_name, "run_id")


def subject_id(actor_name: str, value: Any) -> str:
    """A message's first argument in the form the API shows (`run_…`, `whd_…`, `eval_…`)."""
    return str(public_id(PUBLIC_ID_KEYS[subject_key(actor_name)], value))
