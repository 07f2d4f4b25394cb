"""The alarm lifecycle: active alarms, acks, shelves, clears, orphans at start, link alarms.

Fed by the gateway's fan-out and calling back through it (`Gateway._on_alert`, `_on_event`); the
notify package keeps delivery only.
"""
