"""Match quality: how good a config is, and how to make it better.

- :mod:`.fellegi_sunter`: the Fellegi–Sunter model; u from random pairs, m by EM or from labels.
- :mod:`.calibration`: a proposed config (weights, `missing`, threshold) learnt from the data.
- :mod:`.reports`: the calibration report (pydantic only, shared with `packmatch.responses`).
"""
