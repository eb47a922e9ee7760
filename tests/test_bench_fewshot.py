"""Smoke test of benchmarks/bench_fewshot.py's pure helpers (the benchmark itself never runs in
tests: it needs torch/SetFit and minutes of CPU)."""

import numpy as np
import pytest

from ._bench import load_benchmark, load_script

bf = load_benchmark("bench_fewshot")


def test_scores_hand_worked():
    y_true = np.array([0, 0, 0, 1, 1, 2, 2])
    y_pred = np.array([0, 0, 1, 1, 1, 0, 2])
    s = bf.scores(y_true, y_pred, 4)  # class 3 is absent from the test labels: not the worst
    assert s["acc"] == pytest.approx(5 / 7)
    # F1: class 0 = 2/3 (P 2/3, R 2/3), class 1 = 0.8 (P 2/3, R 1), class 2 = 2/3 (P 1, R 1/2)
    assert s["macro_f1"] == pytest.approx((2 / 3 + 0.8 + 2 / 3) / 3)
    assert (s["worst_class"], s["worst_class_acc"]) == (2, 0.5)
    s = bf.scores(y_true, np.array([0, 0, 0, 1, 0, 2, 2]), 3)
    assert (s["worst_class"], s["worst_class_acc"]) == (1, 0.5)


def test_kshot_indices_per_class_counts_and_seed():
    y = np.array([0, 1, 0, 1, 0, 1, 2, 0, 1])
    idx = bf.kshot_indices(y, 3, 2, seed=0)
    assert sorted(np.bincount(y[idx], minlength=3).tolist()) == [1, 2, 2]  # class 2 has one row
    assert len(set(idx.tolist())) == idx.size
    assert np.array_equal(idx, bf.kshot_indices(y, 3, 2, seed=0))
    assert any(not np.array_equal(idx, bf.kshot_indices(y, 3, 2, seed=s)) for s in range(1, 6))


def test_default_pairs_hand_worked():
    # counts 2, 1: positive pairs 3 + 1 = 4, negative pairs (9 - 5) / 2 = 2 -> 2 * max = 8
    assert bf.default_pairs(np.array([2, 1])) == 8


@pytest.mark.shared
def test_same_samples_as_the_anchor(shared_datasets):
    """The SetFit rows reused from the anchor were fitted on the anchor's k-shot samples and test
    subset: ours must be the very same rows."""
    path = shared_datasets.parent / "anchors" / "bench_fewshot.py"
    if not path.exists():
        pytest.skip(f"no anchor script at {path}")
    anchor = load_script(path, "anchor_bench_fewshot")
    rng = np.random.default_rng(5)
    y = rng.integers(0, 7, size=400)
    for k, seed in ((1, 0), (8, 3), (16, 4)):
        assert np.array_equal(bf.kshot_indices(y, 7, k, seed), anchor.kshot_indices(y, 7, k, seed))
    counts = np.array([3, 8, 1])
    assert bf.default_pairs(counts) == anchor.default_pairs(counts)
    folder = shared_datasets / "text_sms_spam"
    ours, theirs = bf.load_dataset(folder, 300), anchor.load_dataset(folder, 300)
    assert ours["x_test"] == theirs["x_test"] and len(ours["x_test"]) == 300
    assert np.array_equal(ours["y_train"], theirs["y_train"])


def _row(ds, method, k, seed, acc, total, variant="", cpu=None):
    return {"dataset": ds, "method": method, "variant": variant, "k": k, "seed": seed,
            "acc": acc, "total_s": total, "cpu_s": cpu}  # fmt: skip


def test_targets_pair_seeds_and_apply_both_thresholds():
    runs = [
        _row("d", "setfit", 8, 0, 0.70, 100.0),
        _row("d", "setfit", 8, 1, 0.80, 120.0),
        _row("d", "fewshot", 8, 0, 0.70, 5.0),
        _row("d", "fewshot", 8, 1, 0.79, 6.0),
        _row("d", "fewshot", 8, 2, 0.10, 6.0),  # no SetFit row for seed 2: left out
        _row("d", "fewshot+st", 8, 0, 0.80, 12.0),  # 100 / 12 < 10x: missed on time
        _row("d", "logreg", 8, 0, 0.50, 1.0),
        _row("d", "logreg", 8, 1, 0.54, 1.0),
    ]
    t = {x["name"]: x for x in bf.targets(runs, ["d"])}
    sf = t["d, 8-shot, fewshot vs SetFit"]
    assert sf["diff_pts"] == pytest.approx(-0.5) and sf["speedup"] == pytest.approx(110 / 5.5)
    assert sf["met"] is True
    st = t["d, 8-shot, fewshot+st vs SetFit"]
    assert st["diff_pts"] == pytest.approx(10.0) and st["met"] is False
    # with CPU seconds on both sides the verdict uses them, not the wall times
    for r in runs:
        r["cpu_s"] = {"setfit": 200.0, "fewshot": 30.0, "fewshot+st": 10.0}.get(r["method"])
    t = {x["name"]: x for x in bf.targets(runs, ["d"])}
    assert t["d, 8-shot, fewshot vs SetFit"]["cpu_ratio"] == pytest.approx(200 / 30)
    assert t["d, 8-shot, fewshot vs SetFit"]["met"] is False
    assert t["d, 8-shot, fewshot+st vs SetFit"]["met"] is True
    # the LR target pairs seeds too: mean(0.70, 0.79) - mean(0.50, 0.54) = +22.5 pts
    lr = t["8-shot fewshot vs frozen LR"]
    assert lr["diff_pts"] == pytest.approx(22.5) and lr["met"] is True
    st = t["8-shot fewshot+st vs frozen LR"]  # seed 0 only: 0.80 - 0.50
    assert st["diff_pts"] == pytest.approx(30.0)
    runs[-2]["acc"], runs[-1]["acc"] = 0.68, 0.77  # now +2 pts: below the +3 target
    lr = {x["name"]: x for x in bf.targets(runs, ["d"])}["8-shot fewshot vs frozen LR"]
    assert lr["diff_pts"] == pytest.approx(2.0) and lr["met"] is False


def test_targets_zero_shot_needs_two_points_over_names_and_beats_cosine():
    runs = [
        _row("d", "zeroshot", 0, 0, 0.50, 1.0, "descriptions"),
        _row("d", "zeroshot", 0, 0, 0.49, 1.0, "names"),
        _row("d", "cosine", 0, 0, 0.30, 1.0, "names"),
        _row("d", "cosine", 0, 0, 0.51, 1.0, "clean"),
    ]
    t = {x["name"]: x for x in bf.targets(runs, ["d"])}
    assert t["d descriptions vs names"]["met"] is False  # +1 pt is not "clearly"
    assert t["d descriptions vs cosine"]["diff_pts"] == pytest.approx(-1.0)  # best cosine
    assert t["d descriptions vs cosine"]["met"] is False
    runs[1]["acc"] = 0.47
    assert {x["name"]: x["met"] for x in bf.targets(runs, ["d"])}["d descriptions vs names"]


def test_setfit_timing_prefers_the_anchor_row_of_a_seed():
    anchor = dict(_row("d", "setfit", 8, 0, 0.7, 50.0, cpu=100.0), measured_in=bf.ANCHOR_NOTE)
    live = dict(_row("d", "setfit", 8, 0, 0.7, 900.0, "live run", cpu=400.0), measured_in="x")
    mine = _row("d", "fewshot", 8, 0, 0.7, 5.0, cpu=5.0)
    for runs in ([anchor, live, mine], [live, anchor, mine]):
        t = bf.targets(runs, ["d"])[0]
        assert t["speedup"] == pytest.approx(10.0) and t["cpu_ratio"] == pytest.approx(20.0)
