"""Command-line interface (Typer): ``truelabel audit``, ``certify``, ``autolabel``, ``demo``."""

from . import _autolabel  # noqa: F401  (registers the command)
from ._app import app, main

__all__ = ["app", "main"]
