"""find_overlapping_classes: truelabel vs cleanlab on the shared label-error sets, one process.

Same pred_probs and labels; compares every pair's joint probability and count (symmetric and
asymmetric) and the sorted order of the values (pairs with equal values may come in another
order: cleanlab's sort is not stable, truelabel breaks ties by class index).

    PYTHONPATH=src benchmarks/.venv-peers/bin/python benchmarks/check_overlap.py
    (TRUELABEL_DATASETS=/path/to/shared/datasets when not beside the checkout)
"""

from __future__ import annotations

import sys

import numpy as np
from _common import default_datasets_dir
from cleanlab.dataset import find_overlapping_classes as cleanlab_find

from truelabel import find_overlapping_classes


def compare(name: str) -> None:
    folder = default_datasets_dir() / name
    p = np.load(folder / "pred_probs.npy").astype(np.float64)
    p /= p.sum(axis=1, keepdims=True)
    y = np.load(folder / "labels.npy")
    for asymmetric in (False, True):
        theirs = cleanlab_find(labels=y, pred_probs=p, asymmetric=asymmetric)
        ours = find_overlapping_classes(y, p, asymmetric=asymmetric)
        cols = ["Class Index A", "Class Index B", "Joint Probability", "Num Overlapping Examples"]
        ref = {(int(a), int(b)): (v, int(n)) for a, b, v, n in theirs[cols].itertuples(False)}
        got = ours[["class_a", "class_b", "joint_probability", "n_overlapping"]]
        diff = max(abs(ref[(a, b)][0] - v) for a, b, v, _ in got.itertuples(False))
        count_diff = max(abs(ref[(a, b)][1] - n) for a, b, _, n in got.itertuples(False))
        same_values = np.array_equal(
            theirs["Joint Probability"].to_numpy(), ours["joint_probability"].to_numpy()
        )
        print(
            f"{name:20s} asymmetric={asymmetric!s:5s} pairs {len(ours)}/{len(theirs)}  "
            f"max |joint diff| {diff:.1e}  max |count diff| {count_diff}  "
            f"same sorted values {same_values}"
        )


if __name__ == "__main__":
    for name in sys.argv[1:] or ["labelerrors_20news", "labelerrors_mnist"]:
        compare(name)
