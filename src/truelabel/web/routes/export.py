"""``/api/export``: the current labels with provenance, as a download."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Query
from fastapi.responses import FileResponse

from .._deps import ContextDep, UserDep

router = APIRouter(prefix="/api", tags=["export"])

_MEDIA = {"csv": "text/csv", "jsonl": "application/x-ndjson", "parquet": "application/octet-stream"}


@router.get("/export")
def get_export(
    ctx: ContextDep,
    user: UserDep,
    background: BackgroundTasks,
    format: Annotated[Literal["csv", "jsonl", "parquet"], Query()] = "csv",
) -> Any:
    """One row per item (as ``truelabel export``), streamed to a temporary file first."""
    from ...store import export_project

    folder = Path(tempfile.mkdtemp(prefix="truelabel-export-"))
    out = export_project(ctx.handle, out=folder / f"export.{format}", format=format)

    def _cleanup() -> None:
        out.unlink(missing_ok=True)
        folder.rmdir()

    background.add_task(_cleanup)
    return FileResponse(out, media_type=_MEDIA[format], filename=f"{ctx.handle.name}.{format}")
