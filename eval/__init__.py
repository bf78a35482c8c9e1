"""Placeholder package; see README for which issue fills it."""
