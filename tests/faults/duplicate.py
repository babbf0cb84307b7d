"""A fault for scenario 4: every message is delivered twice.

Loaded into a real `packmatch worker` through the product's extension point:
`PACKMATCH_WORKER_MIDDLEWARE=tests.faults.duplicate:DeliverTwice` (the repository root on
`PYTHONPATH`). When a message starts, a copy with the same message id goes to the back of its
queue, so the copy runs either alongside the original or after it has finished: both of the ways a
real broker redelivers. The copy is marked so that it is not copied again.
"""

from __future__ import annotations

import dramatiq
from dramatiq.broker import MessageProxy
from dramatiq.middleware import Middleware

from packmatch.logging import get_logger

log = get_logger(__name__)

MARK = "packmatch_fault_copy"


class DeliverTwice(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: MessageProxy) -> None:
        if message.options.get(MARK):
            return
        copy = message.copy(options={MARK: True})
        broker.enqueue(copy)
        log.info("fault.message_duplicated", message_id=message.message_id, actor=message.actor_name)
