"""The consensus flow behind ``truelabel consensus``: read a long annotation table -> fit an
aggregator -> consensus per item, annotator quality, agreement -> write consensus.csv,
annotators.csv, agreement.json and report.html.

Argument names in errors are the command-line flags (``--item-col``, ``--duplicates``, ...):
this module is the library half of the command, and its errors are what the user reads.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from ._io import atomic_write
from .aggregate import Annotations
from .aggregate._run import (
    FEW_ANSWERS,
    METHODS,
    ConsensusResult,
    check_choice_method,
    run_consensus,
)
from .exceptions import DataFormatError, ValidationError, warn_at_caller

__all__ = [
    "CONSENSUS_FILES",
    "FEW_ANSWERS",
    "METHODS",
    "ConsensusResult",
    "audit_annotations",
    "read_annotations",
    "run_consensus",
    "run_multilabel_file",
    "write_consensus",
]

CONSENSUS_FILES = ("consensus.csv", "annotators.csv", "agreement.json", "report.html")
#: the column names tried, in order, when a --*-col flag is not given
_GUESSES = {
    "--item-col": ("item_id", "item"),
    "--annotator-col": ("annotator_id", "annotator", "worker", "worker_id", "rater"),
    "--label-col": ("label", "answer"),
}


def _read(path: Path) -> pd.DataFrame:
    from .data._readers import read_table, sniff_delimiter, table_format

    fmt = table_format(path)
    if fmt in ("CSV", "TSV") and path.is_file():
        sep = sniff_delimiter(path, "," if fmt == "CSV" else "\t")
        try:  # ids and labels as written ("007" stays "007")
            return pd.read_csv(path, sep=sep, dtype=str)
        except pd.errors.ParserError as exc:
            raise DataFormatError(
                "path", f"cannot read {str(path)!r}: {exc}", "fix the file"
            ) from exc
    return read_table(path)


def _pick(flag: str, given: str | None, columns: pd.Index, path: Path) -> str:
    cols = [str(c) for c in columns]
    if given is not None:
        if given in cols:
            return given
        problem = f"no column {given!r} in {path.name} (columns: {', '.join(cols[:12])})"
        raise ValidationError(flag, problem, f"pass {flag} with one of those columns")
    for name in _GUESSES[flag]:
        if name in cols:
            return name
    tried = "/".join(_GUESSES[flag])
    raise ValidationError(
        flag,
        f"not given and {path.name} has no {tried} column (columns: {', '.join(cols[:12])})",
        f"name the column: {flag} COLUMN",
    )


def read_annotations(
    path: str | Path,
    *,
    item_flag: str = "--item-col",
    item_col: str | None = None,
    annotator_col: str | None = None,
    label_col: str | None = None,
    classes: list[str] | None = None,
    duplicates: str = "raise",
    gold: str | Path | None = None,
) -> Annotations:
    """Read and encode a long annotation table (one row per answer) for the command line.

    Missing ``--*-col`` flags are guessed from common names (``item_id``/``item``,
    ``annotator_id``/``worker``, ``label``). ``gold`` is a second table with the item and
    label columns (same names, or ``item_id``/``item`` and ``label``).
    """
    df, cols = _read_columns(Path(path), item_flag, item_col, annotator_col, label_col)
    gold_series = None if gold is None else _read_gold(Path(gold), cols[0], cols[2])
    try:
        return Annotations(
            df,
            item=cols[0],
            annotator=cols[1],
            label=cols[2],
            classes=classes,
            gold=gold_series,
            duplicates=duplicates,
        )
    except ValidationError as err:
        raise _cli_error(err, cols, classes) from None


def _read_columns(
    p: Path, item_flag: str, item_col: str | None, annotator_col: str | None, label_col: str | None
) -> tuple[pd.DataFrame, tuple[str, str, str]]:
    df = _read(p)
    try:
        item = _pick("--item-col", item_col, df.columns, p)
    except ValidationError as err:
        fix = (err.fix or "").replace("--item-col", item_flag)
        raise ValidationError(item_flag, err.problem, fix) from None
    cols = (
        item,
        _pick("--annotator-col", annotator_col, df.columns, p),
        _pick("--label-col", label_col, df.columns, p),
    )
    return df, cols


def run_multilabel_file(
    path: str | Path,
    *,
    item_col: str | None = None,
    annotator_col: str | None = None,
    label_col: str | None = None,
    sep: str = "|",
    classes: list[str] | None = None,
    duplicates: str = "raise",
    doubtful_below: float = 0.8,
) -> tuple[ConsensusResult, tuple[str, str, str]]:
    """Read a long table of set answers (``"a|b"``, ``sep`` between classes, an empty cell =
    the empty set) and run :func:`~truelabel.aggregate._run_multilabel.run_multilabel_consensus`;
    errors name the command-line flags. Returns the result and the columns used."""
    from .aggregate._run_multilabel import run_multilabel_consensus

    if not isinstance(sep, str) or not sep or sep.strip() != sep:
        raise ValidationError(
            "--label-sep", f"got {sep!r}", "pass the character between classes, e.g. '|' or ','"
        )
    df, cols = _read_columns(Path(path), "--item-col", item_col, annotator_col, label_col)
    frame = df[list(cols)]
    try:
        result = run_multilabel_consensus(
            frame, item=cols[0], annotator=cols[1], label=cols[2], sep=sep, classes=classes,
            duplicates=duplicates, doubtful_below=doubtful_below,
        )  # fmt: skip
    except ValidationError as err:
        fix = err.fix or ""
        if "duplicates=" in fix:
            raise _cli_error(err, cols, classes) from None
        if "not in classes" in err.problem:
            fix = "add it to --classes or fix the answers"
            raise ValidationError("--classes", err.problem, fix) from None
        raise
    return result, cols


def _read_gold(path: Path, item_col: str, label_col: str) -> pd.Series:
    df = _read(path)
    item = item_col if item_col in df.columns else _pick("--item-col", None, df.columns, path)
    if label_col not in df.columns:
        raise ValidationError(
            "--gold",
            f"{path.name} has no label column {label_col!r} (columns: {', '.join(map(str, df.columns[:12]))})",
            "give the gold table the item and label columns of the annotations",
        )
    return pd.Series(df[label_col].to_numpy(), index=df[item].to_numpy())


def _cli_error(err: ValidationError, cols: tuple[str, ...], classes: Any) -> ValidationError:
    """The library's error with the command-line spelling of its fix."""
    fix = err.fix or ""
    if "duplicates=" in fix:
        return ValidationError(
            "--duplicates",
            err.problem,
            "choose how to resolve them: --duplicates last (keep each annotator's latest "
            "answer), --duplicates first, or --duplicates all (every answer is a vote)",
        )
    if err.argument == f"annotations[{cols[2]!r}]" and classes is not None:
        return ValidationError("--classes", err.problem, "add it to --classes or drop those rows")
    return err


def audit_annotations(
    table: Annotations,
    *,
    method: str = "dawid-skene",
    doubtful_below: float = 0.8,
    random_state: int = 0,
    item_model: Any = None,
    backend: Any = None,
    chunk_size: int | None = None,
) -> Any:
    """The audit of an annotation table: the ``consensus`` issue type through
    :class:`~truelabel.Audit` (one row per item, in the table's item order).

    With ``item_model`` (:class:`truelabel._crowd_text.ItemModel`: a text classifier's
    cross-fitted probabilities of the items) the consensus is model-assisted on ``method``
    as base; ``summary["consensus_model"]`` says the classifier, its encoder, weight and
    accuracy against the annotators-only consensus, and ``summary["encoder"]`` the vectors.

    ``result.summary["warnings"]`` lists what the data warned about (too few answers per
    annotator, items with one answer); each is also emitted as a
    :class:`~truelabel.exceptions.TruelabelWarning`.
    """

    from .detect import Audit
    from .exceptions import TruelabelWarning

    check_choice_method(method)
    audit = Audit(
        {"consensus": {"method": method, "doubtful_below": doubtful_below}},
        random_state=random_state,
        backend=backend,
        chunk_size=chunk_size,
    )
    probs = None if item_model is None else item_model.pred_probs
    result = audit.run(annotations=table, pred_probs=probs)
    info = result.info["consensus"]
    if item_model is not None:
        result.summary["consensus_model"] = {
            **info["model_assisted"],
            "classifier": item_model.source,
        }
        result.summary["encoder"] = item_model.encoder
    found = list(info.pop("warnings"))
    for message in found:
        warn_at_caller(message, TruelabelWarning)
    result.summary["warnings"] = found
    result.summary["n_annotators"] = table.n_annotators
    result.summary["n_answers"] = table.n_labels
    result.summary["n_disagreeing_annotators"] = info["n_disagreeing_annotators"]
    result.summary["agreement"] = info["agreement"]
    return result


def write_consensus(
    result: ConsensusResult, out_dir: str | Path, *, settings: dict[str, str] | None = None
) -> dict[str, Path]:
    """Write the four files atomically into ``out_dir`` (created); return their paths."""
    from .report._consensus import render_consensus_report

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {name.split(".")[0]: out / name for name in CONSENSUS_FILES}
    with atomic_write(paths["consensus"]) as fh:
        result.consensus.to_csv(fh, float_format="%.6g")
    with atomic_write(paths["annotators"]) as fh:
        result.annotators.to_csv(fh, float_format="%.6g")
    with atomic_write(paths["agreement"]) as fh:
        json.dump(result.agreement, fh, indent=2)
    html = render_consensus_report(result, settings=settings)
    with atomic_write(paths["report"]) as fh:
        fh.write(html)
    return paths
