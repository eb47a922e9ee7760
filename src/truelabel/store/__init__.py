"""The project database (SQLAlchemy 2.0 + Alembic): SQLite in the project folder by
default, PostgreSQL by URL (``TRUELABEL_DATABASE_URL``). Needs ``pip install 'truelabel[app]'``.

Only this package converts between arrays/DataFrames and database rows. Every repository
function takes a :class:`~sqlalchemy.orm.Session` first and keyword-only arguments after it;
:class:`Store` hands out read sessions and write transactions. History (annotations and
decisions) is append-only; the current label is derived (:data:`PRECEDENCE`).
"""

from __future__ import annotations

from ..exceptions import MissingDependencyError

try:
    import alembic  # noqa: F401
    import sqlalchemy  # noqa: F401
except ImportError as err:  # pragma: no cover - exercised without the extra only
    raise MissingDependencyError(err.name or "sqlalchemy", "app", "truelabel.store") from err

from ._claims import LEASE_SECONDS, check_claim, free_for, release_claim
from ._current import (
    PRECEDENCE,
    current_label_chunks,
    current_labels,
    current_labels_params,
    current_labels_query,
)
from ._engine import DATABASE_ENV, DB_FILE, Store, StoreSettings, make_engine, migrate
from ._limits import ImportLimits
from ._models import (
    Annotation,
    Base,
    Decision,
    Issue,
    Item,
    LabelSource,
    Neighbors,
    Project,
    ReviewTask,
    Run,
    Score,
)
from ._next import NextResult, next_items
from ._project import (
    EXPORT_FORMATS,
    PROJECT_FILE,
    OpenProject,
    export_chunks,
    export_frame,
    export_project,
    init_project,
    open_project,
    opened,
)
from ._projects import (
    add_annotations,
    create_project,
    get_label_source,
    get_project,
    import_items,
    item_ids_by_position,
)
from ._review import (
    add_review_tasks,
    decision_history,
    next_tasks,
    queue_counts,
    record_decision,
    record_decisions,
    undo_decision,
)
from ._reviewers import consensus_labels, decision_log, recent_decisions
from ._runs import (
    add_issues,
    add_neighbors,
    add_scores,
    finish_run,
    item_context,
    run_issues,
    start_run,
    store_audit_issues,
)
from ._users import ROLES, User, add_user, get_user, list_users
from ._workflow import DEFAULT_REVIEW_URL, audit_project, check_review_url

__all__ = [
    "DATABASE_ENV",
    "DB_FILE",
    "DEFAULT_REVIEW_URL",
    "EXPORT_FORMATS",
    "LEASE_SECONDS",
    "PRECEDENCE",
    "PROJECT_FILE",
    "ROLES",
    "Annotation",
    "Base",
    "Decision",
    "ImportLimits",
    "Issue",
    "Item",
    "LabelSource",
    "Neighbors",
    "NextResult",
    "OpenProject",
    "Project",
    "ReviewTask",
    "Run",
    "Score",
    "Store",
    "StoreSettings",
    "User",
    "add_annotations",
    "add_issues",
    "add_neighbors",
    "add_review_tasks",
    "add_scores",
    "add_user",
    "audit_project",
    "check_claim",
    "check_review_url",
    "consensus_labels",
    "create_project",
    "current_label_chunks",
    "current_labels",
    "current_labels_params",
    "current_labels_query",
    "decision_history",
    "decision_log",
    "export_chunks",
    "export_frame",
    "export_project",
    "finish_run",
    "free_for",
    "get_label_source",
    "get_project",
    "get_user",
    "import_items",
    "init_project",
    "item_context",
    "item_ids_by_position",
    "list_users",
    "make_engine",
    "migrate",
    "next_items",
    "next_tasks",
    "open_project",
    "opened",
    "queue_counts",
    "recent_decisions",
    "record_decision",
    "record_decisions",
    "release_claim",
    "run_issues",
    "start_run",
    "store_audit_issues",
    "undo_decision",
]
