"""Command-line interface (Typer): ``truelabel audit``, ``autolabel``, ``certify``, ``demo``,
``consensus``, and the project commands ``init``, ``next``, ``serve``, ``user-add``, ``export`` (``audit
PROJECT`` too)."""

from typer.models import CommandInfo

from . import _audit, _autolabel, _consensus, _next, _project, _serve  # noqa: F401  (registers the commands)
from ._app import app, main

#: the order `truelabel --help` lists the commands in (registration order is import order)
_ORDER = [
    "audit",
    "autolabel",
    "certify",
    "consensus",
    "init",
    "next",
    "serve",
    "export",
    "user-add",
]


def _name(command: CommandInfo) -> str:
    callback = command.callback
    return str(command.name or getattr(callback, "__name__", "")).replace("_", "-")


app.registered_commands.sort(
    key=lambda c: _ORDER.index(_name(c)) if _name(c) in _ORDER else len(_ORDER)
)

__all__ = ["app", "main"]
