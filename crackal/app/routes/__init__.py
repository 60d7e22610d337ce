"""The labelling app's routes, one module per area (see ``crackal.app.server`` for the table)."""
