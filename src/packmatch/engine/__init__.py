"""The pure matching engine: values in, values out; no I/O, no clock, no logging.

- :mod:`.normalise`: comparable text, numbers and dates from raw cell values.
- :mod:`.strategies`: one scoring function per field strategy, in a registry.
- :mod:`.plan`: a config's mappings ready to run; confidence, evidence and candidates of a row.
- :mod:`.scoring`: row confidence, the :class:`Matcher` candidate search, slot outcome.
- :mod:`.index` (with :mod:`.columns`, :mod:`.bounds`, :mod:`.arrays`): a reference dataset
  indexed once for a config's mappings; :mod:`.fields` and :mod:`.search` find the exact top 5
  through it. :mod:`.brute` is the plain full scan they must equal.
- :mod:`.verdict`: a package run's verdict from its slot results.
"""

from packmatch.engine.brute import FullScanMatcher
from packmatch.engine.index import ReferenceIndex
from packmatch.engine.normalise import normalise_text, parse_date, parse_decimal, parse_number
from packmatch.engine.scoring import MAX_CANDIDATES, Matcher, SlotOutcome, score_row, slot_outcome
from packmatch.engine.strategies import STRATEGIES, FieldScore, StrategyFn
from packmatch.engine.verdict import SlotVerdict, Verdict, decide, error_message

__all__ = [
    "MAX_CANDIDATES",
    "STRATEGIES",
    "FieldScore",
    "FullScanMatcher",
    "Matcher",
    "ReferenceIndex",
    "SlotOutcome",
    "SlotVerdict",
    "StrategyFn",
    "Verdict",
    "decide",
    "error_message",
    "normalise_text",
    "parse_date",
    "parse_decimal",
    "parse_number",
    "score_row",
    "slot_outcome",
]
