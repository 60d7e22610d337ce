"""Tests on a local Ray cluster (a package, so that its package-scoped cluster shuts down after them)."""
