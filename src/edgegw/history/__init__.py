"""The historian: what the gateway saw, kept in one SQLite file in its state directory.

`store.Historian` (a Sink) is fed by the engine's hops and the alarm fan-out; `query` reads it
back (read-only, while the daemon runs); `cli` holds `edgegw history` and `edgegw alarms`.
"""
