"""benchmarks/bench_active.py's bookkeeping on hand-worked inputs: the learning-curve area, the
noisy oracle, the start set and the paired target verdicts (the simulation itself needs
scikit-activeml and small-text in benchmarks/.venv-active and never runs in tests)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from ._bench import load_benchmark

ba = load_benchmark("bench_active")


def test_aulc_is_the_trapezoid_mean_over_the_range():
    # (0.5+0.7)/2 * 10 + (0.7+0.9)/2 * 20 = 6 + 16 = 22 over a width of 30
    assert ba.aulc([10, 20, 40], [0.5, 0.7, 0.9]) == pytest.approx(22 / 30)
    # cut at 20 labels: only the first trapezoid
    assert ba._metric({"n": [10, 20, 40], "acc": [0.5, 0.7, 0.9]}, "aulc", 20) == 0.6
    assert ba._metric({"n": [10, 20, 40], "acc": [0.5, 0.7, 0.9]}, "acc@20") == 0.7
    assert ba._metric({"n": [10, 20, 40], "acc": [0.5, 0.7, 0.9]}, "acc@50") is None


def test_oracle_flips_a_fifth_of_answers_to_another_class():
    y = np.arange(20_000) % 5
    clean = ba.Oracle(y, 5, 0.0, seed=0)(np.arange(len(y)))
    assert np.array_equal(clean, y)
    noisy = ba.Oracle(y, 5, 0.2, seed=0)(np.arange(len(y)))
    flipped = noisy != y
    assert 0.19 < flipped.mean() < 0.21  # every drawn flip lands on another class
    assert set(np.unique(noisy)) == set(range(5))
    # each answer is drawn anew: asking again gives other flips, same seed same answers
    again = ba.Oracle(y, 5, 0.2, seed=0)
    first, second = again(np.arange(len(y))), again(np.arange(len(y)))
    assert np.array_equal(first, noisy) and not np.array_equal(first, second)


def test_bench_oracle_pairs_each_answer_with_its_item_and_rank():
    y = np.arange(300) % 3
    a, b = ba.Oracle(y, 3, 0.2, seed=4), ba.Oracle(y, 3, 0.2, seed=4)
    first = a(np.arange(300))
    # another policy asking in another order meets the same answers per (item, rank)
    order = np.random.default_rng(0).permutation(300)
    np.testing.assert_array_equal(b(order), first[order])
    np.testing.assert_array_equal(a(np.arange(300)), b(np.arange(300)))  # second answers too
    assert not np.array_equal(a(np.arange(300)), first)  # a third answer is drawn anew
    assert not np.array_equal(ba.Oracle(y, 3, 0.2, seed=5)(np.arange(300)), first)


def test_start_set_has_two_per_class_and_depends_on_the_seed():
    y = np.repeat(np.arange(4), 25)
    s0 = ba.start_set(y, 4, seed=0)
    assert len(s0) == len(set(s0.tolist())) == 8
    assert np.bincount(y[s0]).tolist() == [2, 2, 2, 2]
    assert np.array_equal(s0, ba.start_set(y, 4, seed=0))
    assert not np.array_equal(np.sort(s0), np.sort(ba.start_set(y, 4, seed=1)))


def _run(accs: list[float]) -> dict:
    return {"n": [10, 20, 30], "acc": accs, "step_s": [0.1, 0.1]}


def test_targets_compare_on_the_seeds_both_ran_against_the_hardest_peer():
    res = {
        "curves": {
            "d": {
                # truelabel ran seeds 0-1; the peer's seed 2 (a lucky one) must not count
                "truelabel": {"0": _run([0.5, 0.6, 0.7]), "1": _run([0.5, 0.6, 0.7])},
                "random": {"0": _run([0.5, 0.5, 0.5]), "1": _run([0.5, 0.5, 0.5])},
                "skal_badge": {
                    "0": _run([0.5, 0.6, 0.6]),
                    "1": _run([0.5, 0.6, 0.6]),
                    "2": _run([0.9, 0.9, 0.9]),
                },
            }
        }
    }
    t = {x["metric"]: x for x in ba.targets(res) if x["target"] == "curve"}
    assert t["aulc"]["met"] is True and "Badge" in t["aulc"]["line"]
    assert "2 seeds" in t["aulc"]["line"]
    # acc@50 and acc@200 are not on these curves
    assert "acc@50" not in t and "acc@200" not in t
    res["curves"]["d"]["skal_badge"]["1"] = _run([0.5, 0.7, 0.9])
    t = {x["metric"]: x for x in ba.targets(res) if x["target"] == "curve"}
    assert t["aulc"]["met"] is False and t["aulc"]["verdict"] == "**missed**"
    premise = next(x for x in ba.targets(res) if x["target"] == "premise")
    assert premise["verdict"].startswith("false")  # Badge tops every metric here


def test_noisy_target_needs_the_default_above_both_baselines():
    def rows(acc: float) -> dict:
        return {"0": {"acc": acc, "answers": 200}}

    res = {"noisy": {"d": {"default": rows(0.8), "label_new": rows(0.7), "three_times": rows(0.6)}}}
    (t,) = [x for x in ba.targets(res) if x["target"] == "noisy"]
    assert t["met"] is True
    res["noisy"]["d"]["three_times"] = rows(0.8)  # a tie is not "above"
    (t,) = [x for x in ba.targets(res) if x["target"] == "noisy"]
    assert t["met"] is False


def _embeddings(folder, values: float) -> None:
    for split in ("train", "test"):
        np.save(folder / f"d_{split}_minilm.npy", np.full((3, 2), values, dtype=np.float32))


def test_merge_refuses_rows_measured_on_other_embeddings(tmp_path, monkeypatch):
    monkeypatch.setattr(ba, "WORK", tmp_path)  # the lock file
    _embeddings(tmp_path, 0.5)
    fp = ba.emb_fingerprint(tmp_path, "d")
    assert len(fp) == 16 and fp == ba.emb_fingerprint(tmp_path, "d")
    out = tmp_path / "active.json"
    ba.Saver(out, True, "run 1", {"d": fp}).save("curves", "d", {"random": {"0": _run([0.5] * 3)}})
    assert json.loads(out.read_text())["embeddings"] == {"d": fp}
    # same embeddings: merged, the first run's rows kept
    same = ba.Saver(out, True, "run 2", {"d": fp})
    same.check_out()
    same.save("curves", "d", {"random": {"1": _run([0.6] * 3)}})
    assert set(json.loads(out.read_text())["curves"]["d"]["random"]) == {"0", "1"}
    # one float changed (another encoder's numerics): refused before any work and at saving
    _embeddings(tmp_path, 0.5000001)
    other = ba.emb_fingerprint(tmp_path, "d")
    assert other != fp
    moved = ba.Saver(out, True, "run 3", {"d": other})
    with pytest.raises(SystemExit, match=f"measured on embeddings {fp}.*holds {other}"):
        moved.check_out()
    with pytest.raises(SystemExit, match="re-run every strategy into another --out"):
        moved.save("curves", "d", {"random": {"2": _run([0.9] * 3)}})
    assert "2" not in json.loads(out.read_text())["curves"]["d"]["random"]
    # a dataset --out has no fingerprint for is recorded, not refused
    ba.Saver(out, True, "run 4", {"e": other}).save(
        "curves", "e", {"random": {"0": _run([0.5] * 3)}}
    )
    assert json.loads(out.read_text())["embeddings"] == {"d": fp, "e": other}


def test_paired_se_is_the_standard_error_of_the_per_seed_differences():
    # differences 0.1, 0.3, 0.2: mean 0.2, sd (ddof 1) 0.1, SE 0.1 / sqrt(3)
    assert ba.paired_se([0.6, 0.8, 0.7], [0.5, 0.5, 0.5]) == pytest.approx(0.1 / np.sqrt(3))
    # a constant gap has no seed noise; one seed or a missing value has no SE
    assert ba.paired_se([0.6, 0.7], [0.5, 0.6]) == pytest.approx(0.0, abs=1e-12)
    assert ba.paired_se([0.6], [0.5]) is None
    assert ba.paired_se([0.6, None], [0.5, 0.5]) is None


def test_targets_line_carries_the_paired_standard_error():
    res = {"curves": {"d": {
        "truelabel": {"0": _run([0.5, 0.6, 0.7]), "1": _run([0.5, 0.6, 0.9])},
        "random": {"0": _run([0.5, 0.5, 0.5]), "1": _run([0.5, 0.5, 0.5])},
    }}}  # fmt: skip
    aulc = next(x for x in ba.targets(res) if x["metric"] == "aulc")
    ours = [ba.aulc(r["n"], r["acc"]) for r in res["curves"]["d"]["truelabel"].values()]
    se = ba.paired_se(ours, [0.5, 0.5])
    assert se == pytest.approx(abs(ours[1] - ours[0]) / 2)  # two seeds: |d1 - d0| / 2
    assert f"± {se:.4f} SE" in aulc["line"]


@pytest.mark.parametrize(
    ("text", "seeds"),
    [("0,1,2", [0, 1, 2]), ("0-3", [0, 1, 2, 3]), ("0-1,7", [0, 1, 7]), ("5", [5])],
)
def test_seeds_take_lists_and_inclusive_ranges(text, seeds):
    assert ba.parse_seeds(text) == seeds
