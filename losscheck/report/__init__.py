"""Renderers of a run's result rows: terminal, JSON (more formats: see the README)."""
