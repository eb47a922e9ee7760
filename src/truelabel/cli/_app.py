"""Thin Typer commands over :mod:`truelabel.pipeline`.

User errors (a :class:`~truelabel.exceptions.TruelabelError`, or an ``OSError`` on a path
the user gave) print one ``error:`` line and exit with code 2, never a traceback. truelabel's
own warnings print as ``warning:`` lines; warnings of other libraries are not shown (their
count is).
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .._progress import progress_enabled
from ..exceptions import DataFormatError, TruelabelError, TruelabelWarning, ValidationError

app = typer.Typer(
    name="truelabel",
    help="Find label errors, outliers and near-duplicates; label texts from class names or a few examples; certify auto-labels.",
    no_args_is_help=True,
    add_completion=False,
)
console = Console(stderr=True)


#: help of every command's ``--encoder`` option
ENCODER_HELP = (
    "text encoder: a local ONNX or sentence-transformers model folder, or "
    "'tfidf' (default: all-MiniLM-L6-v2 if truelabel[text] is installed, else tfidf)"
)
#: the ``--encoder`` option of every command that encodes texts
EncoderOption = Annotated[str | None, typer.Option("--encoder", help=ENCODER_HELP)]

#: library argument names -> the command-line spelling the user typed
_FLAGS = {
    "path": "DATA",
    "label_col": "--label-col",
    "text_col": "--text-col",
    "feature_cols": "--feature-cols",
    "id_col": "--id-col",
    "pred_probs": "--pred-probs",
    "features": "--features",
    "encoder": "--encoder",
    "out": "--out",
    "image_col": "--image-col",
    "database_url": "--database-url",
    "name": "--name",
}


def _fail(err: BaseException, code: int = 2) -> NoReturn:
    if isinstance(err, OSError) and not isinstance(err, TruelabelError):
        where = f" ({err.filename})" if err.filename else ""
        message = f"{err.strerror or err}{where}"
    elif isinstance(err, ValidationError) and err.argument in _FLAGS:
        message = str(err).replace(err.argument, _FLAGS[err.argument], 1)
    else:
        message = str(err)
    console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    raise typer.Exit(code)


@contextmanager
def _shown_warnings() -> Iterator[None]:
    """Print truelabel's warnings (each once) after the block; count the others."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            yield
        finally:
            seen: list[str] = []
            others = 0
            for w in caught or []:
                if not issubclass(w.category, TruelabelWarning):
                    others += 1
                elif str(w.message) not in seen:
                    seen.append(str(w.message))
            for message in seen:
                console.print(f"[bold yellow]warning:[/] {escape(message)}", soft_wrap=True)
            if others:
                console.print(f"[dim]({others} warning(s) from other libraries not shown)[/]")


def _version(value: bool) -> None:
    if value:
        from .. import __version__

        typer.echo(f"truelabel {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: Annotated[
        bool,
        typer.Option(
            "--version", help="print the version and exit", callback=_version, is_eager=True
        ),
    ] = False,
) -> None:
    """Find label errors, outliers and near-duplicates; label texts from class names or a few examples; certify auto-labels."""


def _print_summary(summary: dict[str, Any], out: Path, paths: dict[str, Path]) -> None:
    if "encoder" in summary:
        from ..pipeline import encoder_line

        info = summary["encoder"]
        console.print(f"encoder: {escape(encoder_line(info))}", soft_wrap=True)
        if "note" in info:
            console.print(f"[yellow]note[/]: {escape(info['note'])}", soft_wrap=True)
    table = Table(title=f"{summary['n_items']} items, {summary['n_classes']} classes")
    table.add_column("issue type")
    table.add_column("flagged", justify="right")
    table.add_column("share", justify="right")
    for name, count in summary["issue_counts"].items():
        table.add_row(name, str(count), f"{count / max(summary['n_items'], 1):.1%}")
    console.print(table)
    if "estimated_noise_rate" in summary:
        from ..detect._audit import NOISE_RATE_WARN

        rate = summary["estimated_noise_rate"]
        unreliable = " (unreliable, see the warning)" if rate > NOISE_RATE_WARN else ""
        console.print(f"estimated label noise rate: {rate:.1%}{unreliable}")
    console.print(f"wrote {', '.join(p.name for p in paths.values())} to {out}")


@app.command()
def demo(
    out: Annotated[Path, typer.Option("--out", help="output directory")] = Path("demo_out"),
    noise_rate: Annotated[float, typer.Option(help="fraction of labels to corrupt")] = 0.08,
    seed: Annotated[int, typer.Option(help="random seed")] = 0,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the results of an earlier run in --out")
    ] = False,
) -> None:
    """Audit scikit-learn's handwritten digits with injected label noise; score the result."""
    from ..demo import run_demo
    from ..pipeline import check_output_dir

    try:
        with _shown_warnings():
            check_output_dir(out, overwrite=overwrite, argument="--out")
            with progress_enabled(not quiet):
                scores = run_demo(out, noise_rate=noise_rate, random_state=seed)
    except (TruelabelError, OSError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: files already written are complete; none is partial")
        raise typer.Exit(130) from None
    table = Table(title="label issues vs injected truth")
    for col in ("injected", "flagged", "precision", "recall", "F1", "AUPRC"):
        table.add_column(col, justify="right")
    table.add_row(
        str(scores["injected"]),
        str(scores["flagged"]),
        f"{scores['precision']:.3f}",
        f"{scores['recall']:.3f}",
        f"{scores['f1']:.3f}",
        f"{scores['auprc']:.3f}",
    )
    Console().print(table)
    console.print(f"report: {out / 'report.html'}")


def _load_npy(path: Path, option: str) -> np.ndarray:
    if not path.is_file():
        raise DataFormatError(option, f"file {str(path)!r} does not exist", "check the path")
    try:
        # memory-mapped: rows are read chunk by chunk by the passes that need them
        return np.asarray(np.load(path, allow_pickle=False, mmap_mode="r"))
    except (ValueError, OSError) as err:
        raise DataFormatError(
            option,
            f"{str(path)!r} is not a .npy array of numbers",
            "save probabilities with numpy.save(path, array)",
        ) from err


@app.command()
def certify(
    pred_probs: Annotated[Path, typer.Option("--pred-probs", help="pool probabilities (.npy)")],
    calibration_pred_probs: Annotated[
        Path, typer.Option("--calibration-pred-probs", help="calibration probabilities (.npy)")
    ],
    calibration_labels: Annotated[
        Path,
        typer.Option(
            "--calibration-labels",
            help="trusted labels (CSV/Parquet/JSONL, one row per calibration item, in order; "
            "an issues.csv written by `truelabel audit` works too)",
        ),
    ],
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    max_error: Annotated[float, typer.Option(help="largest allowed error rate")] = 0.02,
    confidence: Annotated[float, typer.Option(help="probability the guarantee holds")] = 0.95,
    label_col: Annotated[
        str | None, typer.Option(help="label column (default: label, else given_label)")
    ] = None,
    classes: Annotated[
        str | None, typer.Option(help="class names in column order, comma-separated")
    ] = None,
    class_conditional: Annotated[
        bool, typer.Option("--class-conditional", help="certify every predicted class")
    ] = False,
    calibration_label_error: Annotated[
        float, typer.Option(help="stated share of wrong calibration labels")
    ] = 0.0,
    set_alpha: Annotated[float, typer.Option(help="miscoverage of the prediction sets")] = 0.1,
    guarantee: Annotated[
        str,
        typer.Option(help="rate: error rate of accepted items; pool: realised error of these"),
    ] = "rate",
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the results of an earlier run in --out")
    ] = False,
) -> None:
    """Auto-label the pool items whose error can be certified; send the rest to review."""
    from ..certification import CERTIFY_FILES, write_certify
    from ..pipeline import check_output_dir

    try:
        with _shown_warnings():
            if not 0.0 < confidence < 1.0:
                raise ValueError(f"--confidence: got {confidence}, expected a value in (0, 1)")
            check_output_dir(out, files=CERTIFY_FILES, overwrite=overwrite, argument="--out")
            result = _certify(
                pred_probs,
                calibration_pred_probs,
                calibration_labels,
                label_col=label_col,
                classes=classes,
                max_error=max_error,
                delta=1.0 - confidence,
                class_conditional=class_conditional,
                calibration_label_error=calibration_label_error,
                set_alpha=set_alpha,
                guarantee=guarantee,
            )
            write_certify(result, out)
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]: files already written are complete; none is partial")
        raise typer.Exit(130) from None
    console.print(result.summary["message"])
    console.print(f"wrote {out / 'decisions.csv'} and {out / 'certificate.json'}")


def _certify(
    pred_probs: Path,
    calibration_pred_probs: Path,
    calibration_labels: Path,
    *,
    label_col: str | None,
    classes: str | None,
    **settings: Any,
) -> Any:
    """Read the certify inputs and run the certify step (the CLI's only logic: file options)."""
    from ..autolabel._step import certify_pool
    from ..certification import read_calibration_labels

    pool = _load_npy(pred_probs, "--pred-probs")
    cal = _load_npy(calibration_pred_probs, "--calibration-pred-probs")
    names = [c.strip() for c in classes.split(",")] if classes else None
    codes, names, from_audit = read_calibration_labels(
        calibration_labels, label_col=label_col, classes=names
    )
    if from_audit:
        console.print(
            "[yellow]note[/]: audit labels are not human-verified; consider "
            "--calibration-label-error with the audit's estimated noise rate"
        )
    return certify_pool(pool, cal, codes, classes=names, **settings)


def main() -> None:
    """Entry point of the ``truelabel`` command."""
    app()
