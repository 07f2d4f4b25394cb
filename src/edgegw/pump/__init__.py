"""Pump performance outside the engine: the totals file that carries energy, run hours and starts
across restarts, the energy report and `edgegw energy`. The formulas live in engine/pump.py."""
