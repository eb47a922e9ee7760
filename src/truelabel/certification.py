"""Files of certified auto-labeling: read the calibration labels, write the decisions.

The certify step itself (:func:`truelabel.autolabel._step.certify_pool`) touches no file;
``truelabel certify`` is this module around it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ._io import atomic_write
from ._validation import check_column
from .autolabel._step import CertifyResult
from .autolabel._texts import TextAutoLabelResult
from .exceptions import ValidationError

__all__ = [
    "AUTOLABEL_FILES",
    "CERTIFY_FILES",
    "read_calibration_labels",
    "write_autolabel",
    "write_certify",
]

#: the files ``truelabel certify`` writes (an --out holding one is refused without --overwrite)
CERTIFY_FILES = ("decisions.csv", "certificate.json")
#: the files ``truelabel autolabel`` writes
AUTOLABEL_FILES = ("labels.csv", "pred_probs.npy", "autolabel.json")


def read_calibration_labels(
    path: str | Path, *, label_col: str | None = None, classes: list[str] | None = None
) -> tuple[Any, list[str], bool]:
    """Trusted labels of the calibration items, in order, from a CSV/Parquet/JSONL table.

    An ``issues.csv`` written by ``truelabel audit`` works too (rows put back in input
    order, ``given_label`` used).

    Returns
    -------
    codes : int array of shape (n_calibration,)
    class_names : list of str
        ``classes`` if given, else the label values in :class:`LabelEncoding` order.
    from_audit : bool
        True for an audit's output, whose labels are not human-verified.
    """
    from .data import LabelEncoding, read_table

    table = read_table(path)
    from_audit = "row" in table and "given_label" in table
    if from_audit:
        table = table.sort_values("row", kind="stable")
    col = label_col or ("label" if "label" in table else "given_label")
    check_column("label_col", col, table.columns)
    values = table[col].to_numpy()
    encoding = LabelEncoding.from_labels(values, classes=classes, argument="calibration_labels")
    return encoding.encode(values), list(encoding.classes), from_audit


def write_certify(result: CertifyResult, out_dir: str | Path) -> dict[str, Path]:
    """Write ``decisions.csv`` and ``certificate.json`` atomically into ``out_dir``."""
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValidationError("out", f"{str(out)!r} is a file", "pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    paths = {"decisions": out / CERTIFY_FILES[0], "certificate": out / CERTIFY_FILES[1]}
    with atomic_write(paths["decisions"]) as fh:
        result.decisions.to_csv(fh, index_label="id")
    with atomic_write(paths["certificate"]) as fh:
        json.dump(result.summary, fh, indent=2)
    return paths


def write_autolabel(
    result: TextAutoLabelResult, out_dir: str | Path, *, ids: Any = None
) -> dict[str, Path]:
    """Write ``labels.csv`` (one row per input row, ``ids`` as the first column when
    given, else ``row``), ``pred_probs.npy`` and ``autolabel.json`` atomically."""
    import numpy as np

    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise ValidationError("out", f"{str(out)!r} is a file", "pass a directory path")
    out.mkdir(parents=True, exist_ok=True)
    paths = {name.split(".")[0]: out / name for name in AUTOLABEL_FILES}
    table = result.labels.copy()
    if ids is not None:
        table.insert(0, "id", list(ids))
    else:
        table.insert(0, "row", table.index)
    with atomic_write(paths["labels"]) as fh:
        table.to_csv(fh, index=False)
    with atomic_write(paths["pred_probs"], "wb") as fh:
        np.save(fh, result.pred_probs)
    with atomic_write(paths["autolabel"]) as fh:
        json.dump(result.summary, fh, indent=2, default=str)
    return paths
