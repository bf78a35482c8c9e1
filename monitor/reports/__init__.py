"""Reviewer reports: plain data built from the store (`build`), drawn with rich (`render`).

The split lets `--json` print exactly what the terminal shows, and keeps the CLI a thin layer.
"""
