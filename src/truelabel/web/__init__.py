"""The review web app (FastAPI + Jinja2 templates + a little vanilla JS). Needs
``pip install 'truelabel[app,web]'``; nothing outside ``truelabel.web`` and ``truelabel serve``
imports it.

Layout: ``_settings.py`` (the one validated ``Settings``), ``_app.py`` (the factory),
``_deps.py`` (``Annotated`` dependency aliases, the CSRF guard), ``_security.py`` (sessions,
CSRF tokens, the data-root guard, the body limit), ``_passwords.py`` (argon2id),
``_schemas.py`` (``XCreate`` / ``XPublic``), ``_service.py`` (views over the store),
``routes/`` (one router per resource), ``templates/`` and ``static/``.
"""

from __future__ import annotations

from ..exceptions import MissingDependencyError

try:
    import fastapi  # noqa: F401
    import jinja2  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised without the extra only
    raise MissingDependencyError(err.name or "fastapi", "web", "truelabel.web") from err

from ._app import create_app
from ._passwords import hash_password, verify_password
from ._settings import Settings

__all__ = ["Settings", "create_app", "hash_password", "verify_password"]
