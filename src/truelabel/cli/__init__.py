"""Command-line interface (Typer): ``truelabel audit``, ``certify``, ``autolabel``, ``demo``,
``consensus``, and the project commands ``init``, ``export`` (``audit PROJECT`` too)."""

from . import _autolabel, _consensus, _project, _serve  # noqa: F401  (registers the commands)
from ._app import app, main

__all__ = ["app", "main"]
