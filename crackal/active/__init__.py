"""The active-learning loop: project store (SQLite), rounds, labels in and out, stopping,
simulation and reports. See ``crackal.active.loop``."""
