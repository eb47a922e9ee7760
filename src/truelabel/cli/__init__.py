"""Command-line interface (Typer): ``truelabel audit``, ``truelabel demo``."""

from ._app import app, main

__all__ = ["app", "main"]
