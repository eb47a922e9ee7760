"""Project commands: ``truelabel init``, ``truelabel export`` and the project form of
``truelabel audit PROJECT`` (thin over :mod:`truelabel.store`, which needs the [app] extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from .._progress import progress_enabled
from ..exceptions import TruelabelError
from ._app import _fail, _print_summary, _shown_warnings, app, console

__all__ = ["audit_project_command", "is_project", "project_features"]

_DB_HELP = "database URL (default: $TRUELABEL_DATABASE_URL, else PROJECT/truelabel.db)"


def is_project(path: Path) -> bool:
    """True when ``path`` is a project folder (it holds ``project.json``)."""
    return path.is_dir() and (path / "project.json").is_file()


def project_features(handle: Any, features: str | None) -> Any:
    """``--features`` of a project: one vector per item in import order (memory-mapped
    ``.npy`` or ``data.parquet:COLUMN``), checked against the project's item count."""
    if features is None:
        return None
    from .._features import read_features

    store = _store()
    with handle.store.read() as session:
        n_items = len(store.item_ids_by_position(session, project_id=handle.project_id))
    return read_features(features, n_items=n_items, argument="--features")


def _store() -> Any:
    import truelabel.store as store

    return store


@app.command()
def init(
    project: Annotated[Path, typer.Argument(help="project folder to create")],
    data: Annotated[Path, typer.Option("--data", help="CSV, TSV, Parquet or JSONL file")],
    label_col: Annotated[
        str | None,
        typer.Option("--label-col", help="column with the given labels (none: see --classes)"),
    ] = None,
    classes: Annotated[
        Path | None,
        typer.Option(
            "--classes",
            help="classes.txt (one name per line) or .yaml/.json: every class, in order; "
            "without --label-col the project starts with no labels (label with `next`)",
        ),
    ] = None,
    text_col: Annotated[str | None, typer.Option("--text-col", help="text column")] = None,
    image_col: Annotated[
        str | None,
        typer.Option("--image-col", help="column of image paths, relative to the data file"),
    ] = None,
    id_col: Annotated[str | None, typer.Option("--id-col", help="column of item ids")] = None,
    database_url: Annotated[str | None, typer.Option("--database-url", help=_DB_HELP)] = None,
    name: Annotated[
        str | None, typer.Option("--name", help="project name (default: the folder's name)")
    ] = None,
    max_file_mb: Annotated[
        float | None, typer.Option("--max-file-mb", help="refuse a larger data file (MiB; 4096)")
    ] = None,
    max_items: Annotated[
        int | None, typer.Option("--max-items", help="refuse more items (10,000,000)")
    ] = None,
    max_text_chars: Annotated[
        int | None, typer.Option("--max-text-chars", help="refuse longer texts (100,000)")
    ] = None,
    max_image_mb: Annotated[
        float | None, typer.Option("--max-image-mb", help="refuse larger images (MiB; 50)")
    ] = None,
) -> None:
    """Create a project: a database with the items of DATA and their original labels.

    With --classes and no --label-col the items start unlabelled: `truelabel next` picks
    the first ones to label and the review app records the answers.
    """
    try:
        with _shown_warnings():
            store = _store()
            given = {
                "max_file_mb": max_file_mb,
                "max_items": max_items,
                "max_text_chars": max_text_chars,
                "max_image_mb": max_image_mb,
            }
            limits = store.ImportLimits(**{k: v for k, v in given.items() if v is not None})
            names = None
            if classes is not None:
                from ..model._classes import read_classes

                names = list(read_classes(classes))
            info = store.init_project(
                project,
                data=data,
                label_col=label_col,
                text_col=text_col,
                image_col=image_col,
                id_col=id_col,
                database_url=database_url,
                name=name,
                limits=limits,
                classes=names,
            )
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: nothing was imported")
        raise typer.Exit(130) from None
    console.print(
        f"created project {escape(info['name'])!s} in {escape(str(project))}: "
        f"{info['n_items']} items, {info['n_labeled']} labelled, {len(info['classes'])} classes",
        soft_wrap=True,
    )


@app.command()
def export(
    project: Annotated[Path, typer.Argument(help="project folder")],
    out: Annotated[Path, typer.Option("--out", help="file to write")],
    format: Annotated[str, typer.Option("--format", help="csv, parquet or jsonl")] = "csv",
    database_url: Annotated[str | None, typer.Option("--database-url", help=_DB_HELP)] = None,
    overwrite: Annotated[bool, typer.Option("--overwrite", help="replace OUT")] = False,
) -> None:
    """Write one row per item: the current label, where it comes from, who set it and when,
    and the original, reviewed, auto-labeled and consensus labels."""
    store = _store()
    try:
        with store.opened(project, database_url=database_url) as handle:
            path = store.export_project(handle, out=out, format=format, overwrite=overwrite)
            frame_rows = _count_sources(handle)
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    table = Table(title=f"{sum(frame_rows.values())} items")
    table.add_column("label from")
    table.add_column("items", justify="right")
    for name, count in frame_rows.items():
        table.add_row(name, str(count))
    console.print(table)
    console.print(f"wrote {escape(str(path))}", soft_wrap=True)


def _count_sources(handle: Any) -> dict[str, int]:
    from sqlalchemy import func, select

    store = _store()
    query = store.current_labels_query().subquery()
    stmt = select(query.c.label_source, func.count()).group_by(query.c.label_source)
    params = store.current_labels_params(handle.project_id)
    with handle.store.read() as session:
        counts = {str(k or "unlabelled"): int(n) for k, n in session.execute(stmt, params)}
    order = [*store.PRECEDENCE, "unlabelled"]
    return {k: counts[k] for k in order if k in counts}


def audit_project_command(
    project: Path,
    *,
    pred_probs: Any,
    features: str | None,
    encoder: str | None,
    cache: bool,
    n_neighbors: int,
    seed: int,
    quiet: bool,
    database_url: str | None,
    review_url: str | None = None,
    run_on: dict[str, Any] | None = None,
    backend_line: str | None = None,
) -> None:
    """``truelabel audit PROJECT``: audit the current labels, store the run, fill the queue.

    ``run_on``: the ``backend`` / ``chunk_size`` of ``--backend`` / ``--chunk-size``;
    ``backend_line``: how the run's settings name them (None: the default, not shown)."""
    from ._app import _load_npy

    store = _store()
    try:
        url = store.DEFAULT_REVIEW_URL if review_url is None else review_url
        url = store.check_review_url(url, argument="--review-url")
        with _shown_warnings(), store.opened(project, database_url=database_url) as handle:
            probs = None if pred_probs is None else _load_npy(pred_probs, "--pred-probs")
            vectors = project_features(handle, features)
            with progress_enabled(not quiet):
                run_id, result, paths = store.audit_project(
                    handle,
                    pred_probs=probs,
                    features=vectors,
                    encoder=encoder,
                    n_neighbors=n_neighbors,
                    random_state=seed,
                    cache_embeddings=cache,
                    review_url=url,
                    settings=None if backend_line is None else {"backend": backend_line},
                    **(run_on or {}),
                )
            with handle.store.read() as session:
                n_open = store.queue_counts(session, project_id=handle.project_id)["open"]
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: the run is marked failed; no issue of it is stored")
        raise typer.Exit(130) from None
    out = project / "runs" / str(run_id)
    _print_summary(result.summary, out, paths)
    console.print(f"run {run_id} stored; {n_open} items waiting for review", soft_wrap=True)
