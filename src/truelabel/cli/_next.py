"""``truelabel next PROJECT --n 20``: the items a person should label or re-label next,
queued for review (thin over :func:`truelabel.store.next_items`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from .._progress import progress_enabled
from ..exceptions import TruelabelError, ValidationError
from ._app import EncoderOption, _fail, _shown_warnings, app, console
from ._project import project_features

__all__ = ["next_command"]

_SNIPPET = 60


@app.command("next")
def next_command(
    project: Annotated[Path, typer.Argument(help="project folder (truelabel init)")],
    n: Annotated[int, typer.Option("--n", help="how many items to suggest")] = 20,
    features: Annotated[
        str | None,
        typer.Option(
            "--features",
            help="precomputed vectors, row i = item i of the imported data: emb.npy or "
            "data.parquet:COLUMN (needed for image projects)",
        ),
    ] = None,
    encoder: EncoderOption = None,
    relabel: Annotated[
        bool,
        typer.Option(
            "--relabel/--no-relabel",
            help="may suggest another answer for a labeled item whose label is doubtful",
        ),
    ] = True,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="show the suggestions, queue nothing")
    ] = False,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
    database_url: Annotated[
        str | None,
        typer.Option("--database-url", help="the project's database URL (default: its own)"),
    ] = None,
) -> None:
    """Which items to label (or label again) next: queued for review, with the reason and
    an estimate of whether more labels are still worth it."""
    if n < 1:
        _fail(ValidationError("--n", f"got {n}", "pass an int >= 1, e.g. --n 20"))
    try:
        import truelabel.store as store  # needs the [app] extra: said as an error, not a traceback

        with _shown_warnings(), store.opened(project, database_url=database_url) as handle:
            vectors = project_features(handle, features)
            with progress_enabled(not quiet):
                result = store.next_items(
                    handle,
                    n=n,
                    features=vectors,
                    encoder=encoder,
                    random_state=seed,
                    allow_relabel=relabel,
                    dry_run=dry_run,
                )
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: nothing was queued")
        raise typer.Exit(130) from None
    table = Table(title=f"next {len(result.suggestions)} items", show_lines=False)
    for col in ("item", "action", "score", "content", "why"):
        table.add_column(col, overflow="fold")
    for row in result.suggestions.itertuples(index=False):
        text = str(row.content)
        snippet = text if len(text) <= _SNIPPET else text[: _SNIPPET - 1] + "…"
        table.add_row(
            escape(str(row.external_id)),
            str(row.action),
            f"{row.score:.2f}",
            escape(snippet),
            escape(str(row.reason)),
        )
    console.print(table)
    console.print(
        f"{result.n_labeled} labeled items taught; vectors: {escape(result.features_note)}",
        soft_wrap=True,
    )
    console.print(f"stopping estimate: {escape(result.stop_estimate.message)}", soft_wrap=True)
    if dry_run:
        console.print("dry run: nothing queued", soft_wrap=True)
    else:
        console.print(
            f"{result.n_tasks} review tasks queued (an item already queued keeps its earlier "
            "reasons); review them with truelabel serve",
            soft_wrap=True,
        )
