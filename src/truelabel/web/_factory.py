"""The app for uvicorn's worker processes (``truelabel serve --workers N``): each worker
imports :func:`app_from_env`, which builds the app from the settings the parent put in
``$TRUELABEL_SERVE_SETTINGS`` (JSON). Workers share the project's secret file, so a
session cookie or CSRF token from one worker is valid in every other."""

from __future__ import annotations

import json
import os
from dataclasses import asdict
from typing import Any

from ._settings import Settings

__all__ = ["SETTINGS_ENV", "app_from_env", "settings_to_env"]

SETTINGS_ENV = "TRUELABEL_SERVE_SETTINGS"


def settings_to_env(settings: Settings) -> str:
    """``settings`` as the JSON :func:`app_from_env` reads."""
    values = asdict(settings)
    values["project"] = str(settings.project)
    return json.dumps(values)


def app_from_env() -> Any:
    """The review app of the settings in ``$TRUELABEL_SERVE_SETTINGS``."""
    from ._app import create_app

    return create_app(Settings(**json.loads(os.environ[SETTINGS_ENV])))
