"""Project folders: create one from a data file (one transaction), open it, export it.

A project folder holds ``project.json`` (name, where the database is; never a password),
the SQLite database ``truelabel.db`` unless a PostgreSQL URL is used, and ``runs/<id>/``
with each audit's report files.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._io import atomic_write
from .._validation import check_column
from ..exceptions import ValidationError
from ._bulk import CHUNK_ROWS
from ._current import current_label_chunks, current_labels
from ._engine import DATABASE_ENV, DB_FILE, Store, StoreSettings
from ._limits import ImportLimits
from ._models import utcnow
from ._projects import add_annotations, create_project, get_label_source, get_project, import_items
from ._projects import text_hash as _text_hash

__all__ = [
    "EXPORT_FORMATS",
    "PROJECT_FILE",
    "OpenProject",
    "export_chunks",
    "export_frame",
    "export_project",
    "init_project",
    "open_project",
    "opened",
]

PROJECT_FILE = "project.json"
EXPORT_FORMATS = ("csv", "parquet", "jsonl")


@dataclass
class OpenProject:
    """An open project: its folder, store and database row."""

    path: Path
    store: Store
    project_id: int
    name: str
    content_kind: str
    settings: dict[str, Any]


def _is_project(path: Path) -> bool:
    return (path / PROJECT_FILE).exists() or (path / DB_FILE).exists()


def _file_hash(path: Path) -> str:
    digest = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _contents(
    dataset: Any, data: Path, text_col: str | None, image_col: str | None, limits: ImportLimits
) -> tuple[str, list[Any] | None, list[Any] | None]:
    if text_col is not None:
        texts = list(dataset.texts)
        limits.check_texts(texts)
        return "text", texts, [_text_hash(t) for t in texts]
    if image_col is None:
        return "none", None, None
    check_column("image_col", image_col, dataset.frame.columns)
    root = data.parent
    paths = [None if v is None or v != v else str(v) for v in dataset.frame[image_col].tolist()]
    hashes: list[str | None] = []
    for row, rel in enumerate(paths):
        if rel is None:
            hashes.append(None)
            continue
        file = root / rel
        if not file.is_file():
            raise ValidationError(
                "image_col",
                f"row {row}: image {rel!r} does not exist ({file})",
                "give image paths relative to the data file's folder",
            )
        limits.check_image(row, file)
        hashes.append(_file_hash(file))
    return "image", paths, hashes


def init_project(
    path: str | os.PathLike[str],
    *,
    data: str | os.PathLike[str],
    label_col: str | None,
    text_col: str | None = None,
    image_col: str | None = None,
    id_col: str | None = None,
    database_url: str | None = None,
    name: str | None = None,
    chunk_rows: int = CHUNK_ROWS,
    limits: ImportLimits | None = None,
    classes: Sequence[str] | None = None,
) -> dict[str, Any]:
    """Create a project folder from a data file: items and their original labels.

    ``classes`` names every class, in order (default: the labels found in ``label_col``);
    with ``classes`` given ``label_col`` may be ``None``: a pool with no label yet (a cold
    start, for ``truelabel next`` and the review app to label from scratch).

    ``limits`` (default :class:`ImportLimits()`) bound the data file (checked before it is
    read), the number of items, each text and each image file; an import above one is
    refused before anything is written.

    Everything is imported in one transaction; on any failure the database is rolled back
    and the files this call created are removed, so no half project is left. A folder that
    already holds a project is refused. ``name`` (default: the folder's name) must be new
    in the database. Returns ``{name, n_items, n_labeled, classes}``.
    """
    from ..data import Dataset

    folder = Path(path)
    if folder.exists() and not folder.is_dir():
        raise ValidationError("PROJECT", f"{str(folder)!r} is a file", "pass a folder path")
    if folder.exists() and _is_project(folder):
        raise ValidationError(
            "PROJECT",
            f"{str(folder)!r} already holds a truelabel project",
            "pick a new folder (or delete this one to start over)",
        )
    if text_col is not None and image_col is not None:
        raise ValidationError(
            "--image-col", f"given with --text-col {text_col!r}", "pass one of the two"
        )
    data = Path(data)
    limits = ImportLimits() if limits is None else limits
    if data.is_file():
        limits.check_file(data)
    if label_col is None and classes is None:
        raise ValidationError(
            "--label-col",
            "not given and no classes are named",
            "pass --label-col COLUMN, or --classes classes.txt to start with no labels",
        )
    dataset = Dataset.from_file(
        data,
        label_col=label_col,
        text_col=text_col,
        id_col=id_col,
        classes=None if classes is None else list(classes),
    )
    if dataset.multi_label:  # pragma: no cover - from_file reads single-label data here
        raise ValidationError("--label-col", "multi-label data", "projects hold one label per item")
    limits.check_items(dataset.n_items)
    kind, contents, hashes = _contents(dataset, data, text_col, image_col, limits)
    classes = [str(c) for c in dataset.classes]
    codes = dataset.labels
    names = np.array([*classes, None], dtype=object)[np.where(codes < 0, len(classes), codes)]
    settings = StoreSettings.resolve(folder, url=database_url)
    sqlite_file = settings.dialect == "sqlite"
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    store = None
    try:
        store = Store(settings)
        with store.write() as session:
            project = create_project(
                session,
                name=name or folder.resolve().name,
                content_kind=kind,
                settings={
                    "data": str(data.resolve()),
                    "data_root": str(data.resolve().parent),
                    "label_col": label_col,
                    "text_col": text_col,
                    "image_col": image_col,
                    "id_col": id_col,
                    "classes": classes,
                },
            )
            item_ids = import_items(
                session,
                project_id=project.id,
                external_ids=[str(i) for i in dataset.frame.index],
                contents=contents,
                content_hashes=hashes,
                chunk_rows=chunk_rows,
            )
            n_labeled = 0
            if label_col is not None:
                source = get_label_source(
                    session, project_id=project.id, kind="original", name=label_col
                )
                n_labeled = add_annotations(
                    session,
                    source_id=source.id,
                    item_ids=item_ids,
                    labels=names,
                    chunk_rows=chunk_rows,
                )
            name = project.name
        meta = {
            "format": 1,
            "name": name,
            "database": "sqlite" if sqlite_file else "url",
            "created_at": utcnow().isoformat(),
        }
        with atomic_write(folder / PROJECT_FILE, "w") as fh:
            json.dump(meta, fh, indent=2)
    except BaseException:
        if store is not None:
            store.close()
        if created:
            shutil.rmtree(folder, ignore_errors=True)
        elif sqlite_file:
            for suffix in ("", "-wal", "-shm", "-journal"):
                with suppress(FileNotFoundError):
                    (folder / (DB_FILE + suffix)).unlink()
        raise
    store.close()
    return {"name": name, "n_items": int(item_ids.size), "n_labeled": n_labeled, "classes": classes}


def open_project(path: str | os.PathLike[str], *, database_url: str | None = None) -> OpenProject:
    """Open the project in ``path`` (migrating its database if needed); close ``.store``."""
    folder = Path(path)
    meta_file = folder / PROJECT_FILE
    if not meta_file.is_file():
        raise ValidationError(
            "PROJECT",
            f"{str(folder)!r} is not a truelabel project (no {PROJECT_FILE})",
            "create one with `truelabel init PROJECT --data DATA --label-col COL`",
        )
    try:
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        name = str(meta["name"])
    except (ValueError, KeyError, TypeError) as err:
        raise ValidationError(
            "PROJECT", f"{str(meta_file)!r} is damaged ({err})", "restore it from a backup"
        ) from err
    if meta.get("database") == "url":
        url = database_url or os.environ.get(DATABASE_ENV)
        if not url:
            raise ValidationError(
                "database_url",
                f"project {name!r} keeps its data in a database given by URL, and none is set",
                f"set {DATABASE_ENV}=postgresql://user:password@host/db",
            )
        settings = StoreSettings(url=url)
    else:  # the folder's own SQLite file, whatever the environment says
        settings = StoreSettings.sqlite_file(folder)
    store = Store(settings)
    try:
        with store.read() as session:
            project = get_project(session, name=name)
            handle = OpenProject(
                path=folder,
                store=store,
                project_id=project.id,
                name=project.name,
                content_kind=project.content_kind,
                settings=dict(project.settings),
            )
    except BaseException:
        store.close()
        raise
    return handle


@contextmanager
def opened(
    path: str | os.PathLike[str], *, database_url: str | None = None
) -> Iterator[OpenProject]:
    """``open_project`` as a context manager (the store is closed at the end)."""
    handle = open_project(path, database_url=database_url)
    try:
        yield handle
    finally:
        handle.store.close()


def _export_view(handle: OpenProject, frame: pd.DataFrame) -> pd.DataFrame:
    content = {"text": "text", "image": "image_path"}.get(handle.content_kind)
    frame = frame.rename(columns={"external_id": "id", "content": content or "content"})
    drop = ["item_id", "position"] + ([] if content else ["content"])
    return frame.drop(columns=drop)


def export_chunks(handle: OpenProject, *, chunk_rows: int = 50_000) -> Iterator[pd.DataFrame]:
    """:func:`export_frame` in consecutive chunks of items (memory O(chunk))."""
    with handle.store.read() as session:
        for frame in current_label_chunks(
            session, project_id=handle.project_id, chunk_rows=chunk_rows
        ):
            yield _export_view(handle, frame)


def export_frame(handle: OpenProject) -> pd.DataFrame:
    """One row per item: id, content, current label and provenance (see ``current_labels``)."""
    with handle.store.read() as session:
        frame = current_labels(session, project_id=handle.project_id)
    return _export_view(handle, frame)


def export_project(
    handle: OpenProject,
    *,
    out: str | os.PathLike[str],
    format: str,
    overwrite: bool = False,
    chunk_rows: int = 50_000,
) -> Path:
    """Write :func:`export_frame` to ``out`` as csv, parquet or jsonl, streamed in chunks of
    ``chunk_rows`` items (atomically: the file appears complete or not at all). Every column
    is a string (missing = empty / null)."""
    if format not in EXPORT_FORMATS:
        raise ValidationError(
            "--format", f"got {format!r}", f"pass one of {', '.join(EXPORT_FORMATS)}"
        )
    target = Path(out)
    if target.exists() and not overwrite:
        raise ValidationError(
            "--out", f"{str(target)!r} already exists", "pass another path or --overwrite"
        )
    mode = "wb" if format == "parquet" else "w"
    with atomic_write(target, mode) as fh:
        writer = None
        for k, frame in enumerate(export_chunks(handle, chunk_rows=chunk_rows)):
            if format == "csv":
                frame.to_csv(fh, index=False, header=k == 0)
            elif format == "jsonl":
                frame.to_json(fh, orient="records", lines=True, force_ascii=False)
            else:
                import pyarrow as pa
                import pyarrow.parquet as pq

                schema = pa.schema([(str(c), pa.string()) for c in frame.columns])
                if writer is None:
                    writer = pq.ParquetWriter(fh, schema)
                writer.write_table(pa.Table.from_pandas(frame, schema=schema, preserve_index=False))
        if writer is not None:
            writer.close()
    return target
