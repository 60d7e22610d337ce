"""Patch classification (crack / no crack, or more damage types) and its sliding window."""
