"""``truelabel consensus``: many annotators' answers -> one label per item, annotator quality,
agreement (thin: the work is :mod:`truelabel._consensus`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from ..exceptions import TruelabelError, ValidationError
from ._app import _fail, _print_summary, _shown_warnings, app, console
from ._backend import (
    AddressOption,
    BackendOption,
    ChunkSizeOption,
    backend_setting,
    resolve_backend,
)


def _classes(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [c.strip() for c in value.split(",") if c.strip()]
    if len(names) < 2:
        raise ValidationError("--classes", f"got {value!r}", "list two or more, e.g. 0,1")
    return names


@app.command()
def consensus(
    annotations: Annotated[
        Path, typer.Argument(help="long table, one row per answer: item, annotator, label")
    ],
    out: Annotated[Path, typer.Option("--out", help="output directory")],
    item_col: Annotated[
        str | None, typer.Option("--item-col", help="item id column (default item_id or item)")
    ] = None,
    annotator_col: Annotated[
        str | None,
        typer.Option(
            "--annotator-col", help="annotator column (default annotator_id, annotator or worker)"
        ),
    ] = None,
    label_col: Annotated[
        str | None, typer.Option("--label-col", help="answer column (default label)")
    ] = None,
    gold: Annotated[
        Path | None,
        typer.Option("--gold", help="known labels: a table with the item and label columns"),
    ] = None,
    method: Annotated[
        str, typer.Option("--method", help="dawid-skene, majority, mace or one-coin")
    ] = "dawid-skene",
    classes: Annotated[
        str | None,
        typer.Option("--classes", help="the class set, comma-separated (other labels: error)"),
    ] = None,
    duplicates: Annotated[
        str,
        typer.Option(
            "--duplicates",
            help="an annotator answering one item twice: raise, first, last or all",
        ),
    ] = "raise",
    doubtful_below: Annotated[
        float, typer.Option("--doubtful-below", help="flag items whose confidence is lower")
    ] = 0.8,
    seed: Annotated[int, typer.Option(help="random seed (ties, random starts)")] = 0,
    multi_label: Annotated[
        bool,
        typer.Option(
            "--multi-label",
            help="each answer is a set of classes ('a|b'; empty = none): multi-label Dawid-Skene",
        ),
    ] = False,
    label_sep: Annotated[
        str | None,
        typer.Option(
            "--label-sep", help="with --multi-label: the separator of classes (default |)"
        ),
    ] = None,
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="replace the results of an earlier run in --out")
    ] = False,
    backend: BackendOption = "local",
    address: AddressOption = None,
    chunk_size: ChunkSizeOption = None,
    quiet: Annotated[bool, typer.Option("--quiet", help="no progress bars")] = False,
) -> None:
    """Consensus labels with confidence, annotator quality and agreement from many annotators.

    Writes consensus.csv, annotators.csv, agreement.json and report.html into --out. With
    --multi-label each answer is a set of classes; consensus.csv then holds the consensus set,
    the probability that it is exactly right, and P(class in the set) per class (p_CLASS).
    """
    from .._consensus import CONSENSUS_FILES, read_annotations, run_consensus, write_consensus
    from .._progress import progress_enabled
    from ..aggregate import DUPLICATE_MODES
    from ..pipeline import check_output_dir

    try:
        with _shown_warnings(), progress_enabled(not quiet):
            if duplicates not in DUPLICATE_MODES:
                raise ValidationError(
                    "--duplicates",
                    f"got {duplicates!r}",
                    f"pass one of {', '.join(DUPLICATE_MODES)}",
                )
            _check_multi_label(multi_label, label_sep, method, gold)
            run_on = resolve_backend(backend, address, chunk_size)
            if multi_label and (backend != "local" or chunk_size is not None):
                raise ValidationError(
                    "--backend" if backend != "local" else "--chunk-size",
                    "is not yet used with --multi-label",
                    "drop it (multi-label consensus runs locally)",
                )
            check_output_dir(out, files=CONSENSUS_FILES, overwrite=overwrite, argument="--out")
            if multi_label:
                _multi_label(
                    annotations, out, item_col=item_col, annotator_col=annotator_col,
                    label_col=label_col, sep="|" if label_sep is None else label_sep,
                    classes=_classes(classes), duplicates=duplicates,
                    doubtful_below=doubtful_below,
                )  # fmt: skip
                return
            table = read_annotations(
                annotations,
                item_col=item_col,
                annotator_col=annotator_col,
                label_col=label_col,
                classes=_classes(classes),
                duplicates=duplicates,
                gold=gold,
            )
            result = run_consensus(
                table, method=method, doubtful_below=doubtful_below, random_state=seed, **run_on
            )
            settings = {
                "annotations": str(annotations),
                "columns": ", ".join(table.columns),
                "method": method,
                "gold": str(gold) if gold else "none",
                "duplicates": duplicates,
                "doubtful below": str(doubtful_below),
                "seed": str(seed),
            }
            if backend != "local" or chunk_size is not None:
                settings["backend"] = backend_setting(backend, address, chunk_size)
            write_consensus(result, out, settings=settings)
            for message in result.warnings:
                console.print(f"[bold yellow]warning:[/] {escape(message)}", soft_wrap=True)
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    _print_consensus(result, table.columns, out)


def _check_multi_label(
    multi_label: bool, label_sep: str | None, method: str, gold: Path | None
) -> None:
    if multi_label:
        if method != "dawid-skene":
            raise ValidationError(
                "--method",
                f"{method!r} with --multi-label",
                "drop --method: multi-label consensus is one binary Dawid-Skene per class",
            )
        if gold is not None:
            raise ValidationError(
                "--gold", "is not supported with --multi-label", "drop --gold (or score it after)"
            )
    elif label_sep is not None:
        raise ValidationError(
            "--label-sep", "is only used with --multi-label", "add --multi-label or drop it"
        )


def _multi_label(annotations: Path, out: Path, *, sep: str, **kw: Any) -> None:
    from .._consensus import run_multilabel_file, write_consensus

    result, cols = run_multilabel_file(annotations, sep=sep, **kw)
    settings = {
        "annotations": str(annotations),
        "columns": ", ".join(cols),
        "method": "multi-label dawid-skene (one binary Dawid-Skene per class)",
        "label separator": sep,
        "duplicates": kw["duplicates"],
        "doubtful below": str(kw["doubtful_below"]),
    }
    write_consensus(result, out, settings=settings)
    for message in result.warnings:
        console.print(f"[bold yellow]warning:[/] {escape(message)}", soft_wrap=True)
    _print_consensus(result, cols, out)


def _print_consensus(result: Any, cols: tuple[str, ...], out: Path) -> None:
    from .._consensus import CONSENSUS_FILES

    s = result.summary
    console.print(f"columns: item={cols[0]}, annotator={cols[1]}, label={cols[2]}")
    grid = Table(
        title=f"{s['n_items']} items, {s['n_annotators']} annotators, {s['n_answers']} answers"
    )
    for col in ("method", "mean confidence", "doubtful", "spammers", "gold items"):
        grid.add_column(col, justify="right")
    grid.add_row(
        s["method"],
        f"{s['mean_confidence']:.3f}",
        f"{s['n_doubtful']} ({s['n_doubtful'] / max(s['n_items'], 1):.1%})",
        f"{s['n_spammers']} of {s['n_annotators']}",
        str(s["n_gold"]),
    )
    console.print(grid)
    if "mean_set_size" in s:
        console.print(
            "note: confidence is the model's probability that the whole set is right (classes "
            "taken as independent); it assumes annotators err independently and runs high "
            "when items have many answers",
            soft_wrap=True,
        )
    elif not s["n_gold"] and s["method"] != "majority":
        console.print(
            "note: confidence is the model's posterior; it assumes annotators err independently "
            "and runs high when items have many answers (crowd_duck: 0.997 mean, 0.898 "
            "accurate); pass --gold with known answers to measure accuracy",
            soft_wrap=True,
        )
    agree = result.agreement
    if agree.get("fleiss_kappa") is not None:
        console.print(
            f"agreement: Fleiss' kappa {agree['fleiss_kappa']:.3f}, Krippendorff's alpha "
            f"{agree['krippendorff_alpha']:.3f}"
        )
    if agree.get("fleiss_kappa_mean") is not None:
        console.print(
            f"agreement per class (yes/no), mean over {len(agree['per_class'])} classes: "
            f"Fleiss' kappa {agree['fleiss_kappa_mean']:.3f}, Krippendorff's alpha "
            f"{agree['krippendorff_alpha_mean']:.3f}"
        )
    if "mean_set_size" in s:
        console.print(f"mean consensus set size {s['mean_set_size']:.2f} classes")
    console.print(f"wrote {', '.join(CONSENSUS_FILES)} to {out}")


def audit_annotations_command(
    data: Path,
    *,
    out: Path | None,
    id_col: str | None,
    annotator_col: str | None,
    label_col: str | None,
    duplicates: str,
    method: str | None,
    seed: int,
    overwrite: bool,
    unused: list[str],
    items: Path | None = None,
    text_col: str | None = None,
    encoder: str | None = None,
    cache: bool = True,
    quiet: bool = False,
    run_on: dict[str, Any] | None = None,
) -> None:
    """``truelabel audit DATA --annotations [--items ITEMS --text-col COL]``: the consensus
    issue type and annotators.csv; with item texts, model-assisted consensus."""
    from .._consensus import audit_annotations, read_annotations
    from .._progress import progress_enabled
    from ..aggregate import DUPLICATE_MODES
    from ..pipeline import check_output_dir, write_audit

    try:
        with _shown_warnings(), progress_enabled(not quiet):
            if unused:
                raise ValidationError(
                    unused[0], "is not used with --annotations", "drop it (answers only)"
                )
            if items is None:
                for flag, value in (("--text-col", text_col), ("--encoder", encoder)):
                    if value is not None:
                        raise ValidationError(
                            flag, "with --annotations needs --items", "pass --items ITEMS.csv"
                        )
            # model-assisted consensus defaults to a one-coin base (benchmarks/results/crowdlab.md)
            method = method or ("dawid-skene" if items is None else "one-coin")
            if items is not None and method == "majority":  # refused before encoding texts
                raise ValidationError(
                    "--method",
                    "'majority' with a classifier's pred_probs (--items)",
                    "model-assisted consensus runs on an EM model: pass dawid-skene, one-coin "
                    "or mace",
                )
            if out is None:
                raise ValidationError("--out", "missing", "pass --out DIR")
            if duplicates not in DUPLICATE_MODES:
                raise ValidationError(
                    "--duplicates",
                    f"got {duplicates!r}",
                    f"pass one of {', '.join(DUPLICATE_MODES)}",
                )
            check_output_dir(out, overwrite=overwrite, argument="--out")
            table = read_annotations(
                data, item_flag="--id-col", item_col=id_col, annotator_col=annotator_col,
                label_col=label_col, duplicates=duplicates,
            )  # fmt: skip
            item_model = None
            if items is not None:
                from .._crowd_text import item_text_pred_probs, read_item_texts

                texts = read_item_texts(items, table, text_col=text_col)
                item_model = item_text_pred_probs(
                    table, texts, encoder=encoder, cache=cache, random_state=seed
                )
            result = audit_annotations(
                table, method=method, random_state=seed, item_model=item_model, **(run_on or {})
            )
            settings = {"data": str(data), "columns": ", ".join(table.columns), "method": method}
            model = result.summary.get("consensus_model")
            if model is not None:
                settings["items"] = str(items)
                settings["consensus"] = _model_line(model)
            paths = write_audit(result, out, settings=settings, overwrite=overwrite)
    except (TruelabelError, OSError, ValueError) as err:
        _fail(err)
    s = result.summary
    console.print(f"{s['n_annotators']} annotators, {s['n_answers']} answers, method {method}")
    if s.get("consensus_model") is not None:
        console.print(f"consensus: {escape(_model_line(s['consensus_model']))}", soft_wrap=True)
    console.print(
        f"{s['n_disagreeing_annotators']} annotators disagree with the consensus or spam "
        "(annotators.csv, column disagrees)"
    )
    _print_summary(s, out, paths)


def _model_line(model: dict[str, Any]) -> str:
    """One line saying how the model-assisted consensus was made."""
    acc = model.get("model_accuracy")
    agree = "n/a" if acc is None else f"{acc:.3f}"
    return (
        f"model-assisted ({model['base']} base + a text classifier: {model['classifier']}); "
        f"model weight {model['model_weight']:.2f}, agreement with the annotators-only "
        f"consensus {agree}"
    )
