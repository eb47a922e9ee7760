"""Exact oracles for every filter and every quality score.

Two kinds: hand-worked tiny examples (the arithmetic is in the comments), and a naive
per-item reference written with Python loops straight from the definitions, compared
value by value with the vectorised implementation on random problems.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from truelabel import find_label_issues, get_label_quality_scores
from truelabel.detect import FILTER_METHODS, QUALITY_METHODS

# ---------------------------------------------------------------- naive reference


def ref_stats(labels, p):
    """Thresholds, confident guess, argmax and the raw confident joint, item by item."""
    n, k = p.shape
    thr = []
    for c in range(k):
        vals = [float(p[i, c]) for i in range(n) if labels[i] == c]
        thr.append(sum(vals) / len(vals) if vals else math.inf)
    guess, argmax = [], []
    cj = [[0] * k for _ in range(k)]
    for i in range(n):
        row = [float(v) for v in p[i]]
        argmax.append(max(range(k), key=lambda c: (row[c], -c)))
        ok = [c for c in range(k) if row[c] >= thr[c] - 1e-6]
        g = max(ok, key=lambda c: (row[c], -c)) if ok else -1
        guess.append(g)
        if g >= 0:
            cj[labels[i]][g] += 1
    return thr, guess, argmax, cj


def ref_calibrate(cj, counts):
    k = len(cj)
    cal = [[0.0] * k for _ in range(k)]
    for s in range(k):
        rs = sum(cj[s])
        if rs > 0:
            for y in range(k):
                cal[s][y] = cj[s][y] / rs * counts[s]
        else:
            cal[s][s] = float(counts[s])
    total = sum(map(sum, cal))
    return [[v / total * sum(counts) for v in row] for row in cal]


def ref_round_rows(m):
    """Round each row, then fix its total: +1 on the largest remainders (ties: later
    column first) or -1 on the smallest (ties: earlier column first)."""
    out = []
    for row in m:
        ints = [round(v) for v in row]
        missing = round(sum(row)) - sum(ints)
        frac = [v - i for v, i in zip(row, ints, strict=True)]
        idx = range(len(row))
        if missing >= 0:
            order = sorted(idx, key=lambda j: (frac[j], j), reverse=True)
        else:
            order = sorted(idx, key=lambda j: (frac[j], j))
        for j in order[: abs(missing)]:
            ints[j] += 1 if missing > 0 else -1
        out.append(ints)
    return out


def ref_prune_counts(cal_rounded, mepc, frac_noise):
    """[s][y] = items given s to remove as truly y (cleanlab's _keep_at_least_n_per_class)."""
    k = len(cal_rounded)
    pcm = [[float(cal_rounded[s][y]) for s in range(k)] for y in range(k)]  # [y][s]
    new = [[0.0] * k for _ in range(k)]
    for s in range(k):
        diag = pcm[s][s]
        nd = max(diag, mepc)
        n_rates = max(sum(1 for y in range(k) if pcm[y][s] != 0) - 1, 1)
        for y in range(k):
            new[y][s] = max(pcm[y][s] - (nd - diag) / n_rates, 0.0)
        new[s][s] = nd
        if frac_noise != 1.0:
            removed = sum(new[y][s] for y in range(k) if y != s) * (1 - frac_noise)
            for y in range(k):
                if y != s:
                    new[y][s] *= frac_noise
            new[s][s] = nd + removed
    r = ref_round_rows(new)
    return [[0 if s == y else r[y][s] for y in range(k)] for s in range(k)]


def ref_scores(labels, p, method):
    n, k = p.shape
    out = []
    for i in range(n):
        s = labels[i]
        row = [float(v) for v in p[i]]
        if method == "self_confidence":
            out.append(row[s])
        elif method == "normalized_margin":
            out.append((row[s] - max(row[c] for c in range(k) if c != s) + 1) / 2)
        elif method == "confidence_weighted_entropy":
            q = [max(v, 1e-6) for v in row]
            ent = -sum(v * math.log(v) for v in q) / math.log(k)
            r = ent / max(row[s], 1e-6)
            out.append(math.log(r + 1) / max(r, 1e-6))
    if method == "confidence_weighted_entropy":
        top = max(max(out), 1e-6)
        out = [min(max(v / top, 0.0), 1.0) for v in out]
    return np.array(out)


def ref_dispersion(cj):
    """Pearson chi-square of each true column's off-diagonal counts against equal cells,
    summed, over (K - 2) degrees of freedom per column with any off-diagonal count."""
    k = len(cj)
    x2, df = 0.0, 0
    for y in range(k):
        m = sum(cj[s][y] for s in range(k) if s != y)
        if m == 0:
            continue
        e = m / (k - 1)
        x2 += sum((cj[s][y] - e) ** 2 / e for s in range(k) if s != y)
        df += k - 2
    return x2 / df if df else math.nan


def ref_smoothed_matrix(cal_rounded, strength=10.0):
    """P(given s | true y) from the rounded calibrated joint plus strength x rate
    pseudo-counts in every off-diagonal cell (and 1e-9 everywhere)."""
    k = len(cal_rounded)
    total = sum(map(sum, cal_rounded))
    rate = (total - sum(cal_rounded[i][i] for i in range(k))) / total
    sm = [
        [cal_rounded[s][y] + (strength * rate if s != y else 0.0) + 1e-9 for y in range(k)]
        for s in range(k)
    ]
    return [[sm[s][y] / sum(sm[r][y] for r in range(k)) for y in range(k)] for s in range(k)]


def ref_rate_dispersion(cj):
    """Pearson chi-square of each true column's off-diagonal count against one pooled rate
    (binomial), over (columns - 1) degrees of freedom."""
    k = len(cj)
    cols = [y for y in range(k) if sum(cj[s][y] for s in range(k)) > 0]
    n = [sum(cj[s][y] for s in range(k)) for y in cols]
    o = [n_y - cj[y][y] for n_y, y in zip(n, cols, strict=True)]
    r = sum(o) / sum(n)
    if len(cols) < 2 or not 0 < r < 1:
        return math.nan
    return sum(
        (o_y - n_y * r) ** 2 / (n_y * r * (1 - r)) for o_y, n_y in zip(o, n, strict=True)
    ) / (len(cols) - 1)


def ref_score_matrix(cj_raw, cal_rounded):
    """The default score's matrix: each column's noise rate and its distribution over the
    other labels, each moved from uniform noise at the overall rate towards the smoothed
    matrix by lam = 1 - 1/D when its dispersion D exceeds 1."""
    k = len(cal_rounded)
    total = sum(map(sum, cal_rounded))
    rate = (total - sum(cal_rounded[i][i] for i in range(k))) / total
    t = ref_smoothed_matrix(cal_rounded)
    r = min(max(rate, 1e-3), 1 - 1e-3)
    d_rate, d_off = ref_rate_dispersion(cj_raw), ref_dispersion(cj_raw)
    lam_rate = 1 - 1 / d_rate if d_rate > 1 else 0.0
    lam_off = 1 - 1 / d_off if d_off > 1 else 0.0
    m = [[0.0] * k for _ in range(k)]
    for y in range(k):
        rho = 1 - t[y][y]
        rate_y = r + lam_rate * (rho - r)
        m[y][y] = 1 - rate_y
        for s in range(k):
            if s != y:
                m[s][y] = rate_y * (1 / (k - 1) + lam_off * (t[s][y] / rho - 1 / (k - 1)))
    return m, (lam_rate, lam_off)


def ref_noise_aware(labels, p, tm):
    out = []
    for i in range(len(labels)):
        s = labels[i]
        den = sum(tm[s][y] * float(p[i, y]) for y in range(p.shape[1]))
        out.append(min(max(tm[s][s] * float(p[i, s]) / den, 0.0), 1.0))
    return np.array(out)


def ref_filter(labels, p, filter_by, mepc=1, frac_noise=1.0):
    n, k = p.shape
    labels = [int(v) for v in labels]
    thr, guess, argmax, cj = ref_stats(labels, p)
    counts_per_label = [labels.count(c) for c in range(k)]
    disagree = [argmax[i] != labels[i] for i in range(n)]
    if filter_by == "predicted_neq_given":
        return np.array(disagree)
    if filter_by == "confident_learning":
        return np.array([guess[i] >= 0 and guess[i] != labels[i] and disagree[i] for i in range(n)])
    cal = ref_round_rows(ref_calibrate(cj, counts_per_label))
    counts = ref_prune_counts(cal, mepc, frac_noise)
    flag = [False] * n
    if filter_by in ("noise_aware", "low_self_confidence", "low_normalized_margin"):
        if filter_by == "noise_aware":  # the smoothed matrix, not shrunk by regime
            sc = ref_noise_aware(labels, p, ref_smoothed_matrix(cal))
        else:
            sc = ref_scores(labels, p, filter_by[4:])
        n_issues = sum(map(sum, counts))
        for i in sorted(range(n), key=lambda i: sc[i])[:n_issues]:
            flag[i] = filter_by != "noise_aware" or disagree[i]
        out = [False] * n
        for c in range(k):  # at most (count - min_examples_per_class) flagged per label
            cand = sorted((i for i in range(n) if flag[i] and labels[i] == c), key=lambda i: sc[i])
            for i in cand[: max(counts_per_label[c] - mepc, 0)]:
                out[i] = True
        return np.array(out)
    by_class, by_rate = [False] * n, [False] * n
    sc = ref_scores(labels, p, "self_confidence")
    for c in range(k):
        rows = [i for i in range(n) if labels[i] == c]
        for i in sorted(rows, key=lambda i: (sc[i], i))[: sum(counts[c])]:
            by_class[i] = True
        for y in range(k):
            if counts[c][y]:
                marg = sorted(rows, key=lambda i: (-(float(p[i, y]) - float(p[i, c])), i))
                for i in marg[: counts[c][y]]:
                    by_rate[i] = True
    pick = {
        "prune_by_class": by_class,
        "prune_by_noise_rate": by_rate,
        "both": [a and b for a, b in zip(by_class, by_rate, strict=True)],
    }[filter_by]
    return np.array([pick[i] and disagree[i] for i in range(n)])


def _problem(seed, n, k, noise, structure):
    rng = np.random.default_rng(seed)
    true = rng.integers(0, k, n)
    flip = rng.random(n) < noise
    other = (true + 1) % k if structure == "pairwise" else (true + rng.integers(1, k, n)) % k
    labels = np.where(flip, other, true)
    z = rng.normal(size=(n, k)) + 2.5 * np.eye(k)[true]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    return labels, p


PROBLEMS = [
    (0, 300, 5, 0.2, "uniform"),
    (1, 240, 4, 0.25, "pairwise"),
    (2, 200, 3, 0.1, "uniform"),
    (3, 400, 7, 0.3, "pairwise"),
]


# ---------------------------------------------------------------- reference vs library


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("filter_by", FILTER_METHODS)
def test_every_filter_equals_the_item_by_item_reference(problem, filter_by):
    labels, p = _problem(*problem)
    got = find_label_issues(labels, p, filter_by=filter_by)
    expected = ref_filter(labels, p, filter_by)
    assert expected.any()
    np.testing.assert_array_equal(got, expected)


@pytest.mark.parametrize("setting", [(3, 0.5), (0, 0.25), (50, 1.0), (45, 0.5)])
@pytest.mark.parametrize("filter_by", FILTER_METHODS)
def test_filters_follow_min_examples_and_frac_noise(setting, filter_by):
    mepc, frac = setting
    labels, p = _problem(*PROBLEMS[1])
    got = find_label_issues(
        labels, p, filter_by=filter_by, min_examples_per_class=mepc, frac_noise=frac
    )
    np.testing.assert_array_equal(got, ref_filter(labels, p, filter_by, mepc, frac))


def test_min_examples_and_frac_noise_change_the_counts():
    """The settings are not no-ops on the reference problem (so the test above bites)."""
    labels, p = _problem(*PROBLEMS[1])
    base = find_label_issues(labels, p, filter_by="prune_by_class")
    half = find_label_issues(labels, p, filter_by="prune_by_class", frac_noise=0.5)
    assert 0 < half.sum() < base.sum()
    assert abs(int(half.sum()) - int(base.sum()) / 2) <= 4
    # a class of 60 items keeps at least 58 when min_examples_per_class=58
    keep = find_label_issues(labels, p, filter_by="low_self_confidence", min_examples_per_class=58)
    for c in range(4):
        assert (~keep[labels == c]).sum() >= min(58, (labels == c).sum())
    assert keep.sum() < find_label_issues(labels, p, filter_by="low_self_confidence").sum()


@pytest.mark.parametrize("problem", PROBLEMS)
@pytest.mark.parametrize("method", [m for m in QUALITY_METHODS if m != "noise_aware"])
def test_every_plain_score_equals_the_reference(problem, method):
    labels, p = _problem(*problem)
    got = get_label_quality_scores(labels, p, method=method)
    np.testing.assert_allclose(got, ref_scores(labels, p, method), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("problem", PROBLEMS)
def test_noise_aware_equals_the_reference(problem):
    labels, p = _problem(*problem)
    _, _, _, cj = ref_stats(labels.tolist(), p)
    counts = np.bincount(labels, minlength=p.shape[1]).tolist()
    tm, lam = ref_score_matrix(cj, ref_round_rows(ref_calibrate(cj, counts)))
    got = get_label_quality_scores(labels, p)  # the default
    np.testing.assert_allclose(got, ref_noise_aware(labels.tolist(), p, tm), rtol=1e-10)
    # k -> k + 1 flips: strong evidence of structure, most of the estimated matrix is used
    if problem[-1] == "pairwise":
        assert lam[1] > 0.5


# ---------------------------------------------------------------- hand-worked examples

# 8 items, 2 classes. Thresholds: t0 = mean p0 over items given 0 = (.9+.8+.3+.2)/4 = .55,
# t1 = mean p1 over items given 1 = (.9+.6+.3+.4)/4 = .55.
HAND_P = np.array(
    [[0.9, 0.1], [0.8, 0.2], [0.3, 0.7], [0.2, 0.8],  # given 0
     [0.1, 0.9], [0.4, 0.6], [0.7, 0.3], [0.6, 0.4]]  # given 1
)  # fmt: skip
HAND_Y = np.array([0, 0, 0, 0, 1, 1, 1, 1])
# confident guesses: 0, 0, 1, 1 | 1, 1, 0, 0 (every item clears one threshold), so the
# confident joint is [[2, 2], [2, 2]]; calibrated = same; prune counts: 2 per given class.
# argmax != label: items 2, 3, 6, 7.


def test_hand_example_every_filter():
    expected = {
        # 2 lowest self-confidence per class: given 0 -> items 3 (.2), 2 (.3);
        # given 1 -> items 6 (.3), 7 (.4); all disagree
        "prune_by_class": [2, 3, 6, 7],
        "prune_by_noise_rate": [2, 3, 6, 7],  # largest p1-p0 in class 0: 3 (.6), 2 (.4)
        "both": [2, 3, 6, 7],
        "confident_learning": [2, 3, 6, 7],
        "predicted_neq_given": [2, 3, 6, 7],
        # 4 lowest overall (2 + 2), at most 4 - 1 = 3 per class
        "low_self_confidence": [2, 3, 6, 7],
        "low_normalized_margin": [2, 3, 6, 7],
        "noise_aware": [2, 3, 6, 7],
    }
    for f in FILTER_METHODS:
        assert (
            np.flatnonzero(find_label_issues(HAND_Y, HAND_P, filter_by=f)).tolist() == (expected[f])
        ), f
    # frac_noise 0.5: one per class, the lowest self-confidence / largest margin
    half = {"prune_by_class": [3, 6], "prune_by_noise_rate": [3, 6]}
    for f, idx in half.items():
        assert np.flatnonzero(find_label_issues(HAND_Y, HAND_P, filter_by=f, frac_noise=0.5)) \
            .tolist() == idx, f  # fmt: skip


def test_hand_example_filters_that_are_not_argmax_disagreement():
    """Three items disagree with the model but only two are estimated errors.

    K = 3, 9 items. Given 0: items 0-3, given 1: items 4-6, given 2: items 7-8.
    """
    p = np.array([
        [0.8, 0.1, 0.1], [0.7, 0.2, 0.1], [0.3, 0.6, 0.1], [0.45, 0.5, 0.05],
        [0.1, 0.8, 0.1], [0.22, 0.68, 0.1], [0.1, 0.32, 0.58],
        [0.1, 0.1, 0.8], [0.2, 0.1, 0.7],
    ])  # fmt: skip
    y = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    # t0 = (.8+.7+.3+.45)/4 = .5625, t1 = (.8+.68+.32)/3 = .6, t2 = (.8+.7)/2 = .75.
    # item 2: p1 .6 >= .6 -> guess 1; item 3: p1 .5 < .6, p0 .45 < .5625 -> no guess;
    # item 6: p2 .58 < .75, p1 .32 < .6 -> none; item 8: p2 .7 < .75 -> none.
    # Confident joint [[2,1,0],[0,2,0],[0,0,1]]. Calibrated row 0: [2,1,0] * 4/3 =
    # [2.67, 1.33, 0] -> rounded [3, 1, 0]; row 1: [0, 3, 0]; row 2: [0, 0, 2]: one error.
    disagree = [2, 3, 6]
    assert np.flatnonzero(find_label_issues(y, p, filter_by="predicted_neq_given")).tolist() == (
        disagree
    )
    # prune_by_class: the 1 lowest self-confidence of class 0 = item 2 (.3); not 3 or 6
    # prune_by_noise_rate: class 0, column 1: largest p1 - p0 = item 2 (.3 vs .05)
    # confident_learning: item 2 is the only off-diagonal confident count
    # low_normalized_margin: 1 lowest (p_s - max other + 1) / 2 over all items: item 2 (.35;
    # item 6: .37, item 3: .475); low_self_confidence: item 2 (.3; item 6: .32)
    # noise_aware: D = 1 (column 1: [1, 0] vs [.5, .5]) -> lam = 0 -> self-confidence order
    for f in FILTER_METHODS:
        if f != "predicted_neq_given":
            assert np.flatnonzero(find_label_issues(y, p, filter_by=f)).tolist() == [2], f
    # the ranked output: items flagged, worst first
    assert find_label_issues(y, p, filter_by="predicted_neq_given", return_ranked=True,
                             rank_by="normalized_margin").tolist() == [2, 6, 3]  # fmt: skip


def test_hand_scores():
    p = np.array([[0.6, 0.3, 0.1], [0.2, 0.2, 0.6]])
    y = np.array([1, 2])
    np.testing.assert_allclose(get_label_quality_scores(y, p, method="self_confidence"), [0.3, 0.6])
    # (.3 - .6 + 1) / 2 = .35; (.6 - .2 + 1) / 2 = .7
    np.testing.assert_allclose(
        get_label_quality_scores(y, p, method="normalized_margin"), [0.35, 0.7]
    )
    # entropy / log 3: row 0: -(.6 ln .6 + .3 ln .3 + .1 ln .1) / ln 3 = 0.8173454;
    # r0 = 0.8173454 / .3 = 2.7244847, s0 = ln(3.7244847) / 2.7244847 = 0.4826338
    # row 1: -(2 * .2 ln .2 + .6 ln .6) / ln 3 = 0.8649735, r1 = 1.4416225,
    # s1 = ln(2.4416225) / 1.4416225 = 0.6192070; rescaled by the max: [0.7794386, 1]
    np.testing.assert_allclose(
        get_label_quality_scores(y, p, method="confidence_weighted_entropy"),
        [0.7794386, 1.0],
        rtol=1e-6,
    )


def _regime_problem(pairwise: bool):
    """K = 3, 30 items: 8 correct per class (p = .8 on it), 2 flipped per true class.

    Uniform: true y flipped once to each other class; pairwise: twice to y + 1.
    """
    rows, labels = [], []
    for y in range(3):
        for j in range(8):
            q = 0.8 - 0.01 * j
            row = [(1 - q) / 2] * 3
            row[y] = q
            rows.append(row)
            labels.append(y)
        for j, s in enumerate(
            [(y + 1) % 3, (y + 1) % 3] if pairwise else [(y + 1) % 3, (y + 2) % 3]
        ):
            q = 0.75 + 0.02 * j
            row = [(1 - q) / 2] * 3
            row[y] = q
            rows.append(row)
            labels.append(s)
    return np.array(labels), np.array(rows)


def test_regime_rule_hand_example():
    from truelabel.detect._confident_learning import _compute_stats
    from truelabel.detect._rank import _score_noise_matrix, _structure_dispersion

    # uniform: each column's 2 off-diagonal counts are [1, 1] -> chi-square 0 -> D = 0, lam = 0
    y, p = _regime_problem(pairwise=False)
    st = _compute_stats(y, p)
    assert st.confident_joint.tolist() == [[8, 1, 1], [1, 8, 1], [1, 1, 8]]
    assert _structure_dispersion(st.confident_joint) == 0.0
    # rate 6/30 = .2 -> U = [[.8, .1, .1], ...], and the score is U's posterior
    np.testing.assert_allclose(_score_noise_matrix(st), 0.1 + 0.7 * np.eye(3))
    s = get_label_quality_scores(y, p)
    sc = p[np.arange(30), y]
    np.testing.assert_allclose(s, 0.8 * sc / (0.8 * sc + 0.1 * (1 - sc)))
    order = np.argsort(sc, kind="stable")  # same order as self-confidence (up to its ties)
    assert (np.diff(s[order]) >= -1e-15).all()
    # pairwise: columns [0, 2] / expected [1, 1] -> chi-square 2 per column, 1 df each: D = 2,
    # lam_off = 1 - 1/2 = .5; every column has 2 of 10 off the diagonal: rate D = 0, lam_rate 0
    y, p = _regime_problem(pairwise=True)
    st = _compute_stats(y, p)
    assert st.confident_joint.tolist() == [[8, 0, 2], [2, 8, 0], [0, 2, 8]]
    assert _structure_dispersion(st.confident_joint) == pytest.approx(2.0)
    # smoothed T: counts + 10 * .2 = 2 pseudo-counts off the diagonal: column 0 = [8, 4, 2]/14,
    # its rate 6/14 split 2/3 : 1/3 between labels 1 and 2; shrunk halfway to 1/2 : 1/2 ->
    # 7/12 : 5/12 of the common rate .2
    tm = np.full((3, 3), 0.8)
    for c in range(3):
        tm[(c + 1) % 3, c], tm[(c + 2) % 3, c] = 0.2 * 7 / 12, 0.2 * 5 / 12
    np.testing.assert_allclose(_score_noise_matrix(st), tm, rtol=1e-8)
    # the score is the posterior under that matrix, item by item
    s = get_label_quality_scores(y, p)
    np.testing.assert_allclose(s, [tm[c, c] * p[i, c] / (tm[c] @ p[i]) for i, c in enumerate(y)])


def test_dispersion_hand_values():
    from truelabel.detect._rank import _structure_dispersion

    # only column 0 has off-diagonal counts: [4, 0] vs expected [2, 2] -> chi-square
    # (2^2 + 2^2) / 2 = 4 over 1 degree of freedom (empty columns carry none): D = 4
    assert _structure_dispersion(np.array([[8, 0, 0], [4, 8, 0], [0, 0, 8]])) == 4.0
    # K = 4, column 1: [6, 0, 0] vs [2, 2, 2] -> (16 + 4 + 4) / 2 = 12, column 3: [1, 1, 1] -> 0;
    # 2 columns x 2 df: D = 3
    cj = np.array([[5, 6, 0, 1], [0, 5, 0, 1], [0, 0, 5, 1], [0, 0, 0, 5]])
    assert _structure_dispersion(cj) == pytest.approx(3.0)
    # nothing to test: two classes, or no off-diagonal counts
    assert np.isnan(_structure_dispersion(np.array([[5, 1], [2, 5]])))
    assert np.isnan(_structure_dispersion(np.eye(3) * 4))


def test_clean_labels_still_rank_by_self_confidence():
    """No off-diagonal confident counts (estimated rate 0): the uniform-noise posterior at
    rate 0 would be 1 for everyone, so the rate is floored at 1e-3 and the order is kept."""
    rng = np.random.default_rng(5)
    y = np.repeat(np.arange(3), 20)
    q = rng.uniform(0.5, 0.99, 60)
    p = np.tile(((1 - q) / 2)[:, None], (1, 3))
    p[np.arange(60), y] = q
    s = get_label_quality_scores(y, p)
    r = 1e-3
    np.testing.assert_allclose(s, (1 - r) * q / ((1 - r) * q + r / 2 * (1 - q)))
    assert np.unique(s).size == 60


def test_min_examples_per_class_raises_the_diagonal_by_hand():
    # the 8-item example: diagonal 2 raised to 3 takes 1 from the single off-diagonal
    # count of each given class -> 1 item per class: the lowest self-confidence / margin
    for f in ("prune_by_class", "prune_by_noise_rate"):
        got = find_label_issues(HAND_Y, HAND_P, filter_by=f, min_examples_per_class=3)
        assert np.flatnonzero(got).tolist() == [3, 6], f
    # 4 - 4 = 0 items of each class may be flagged
    assert not find_label_issues(HAND_Y, HAND_P, min_examples_per_class=4).any()


def test_confident_learning_needs_the_model_to_disagree():
    """Item 2 is confidently counted as class 2 (p2 .44 >= t2 .425) but its argmax is its
    given label 0: counted off the diagonal, yet not an issue."""
    from truelabel import compute_confident_joint

    p = np.array([
        [0.9, 0.05, 0.05], [0.9, 0.05, 0.05], [0.46, 0.10, 0.44],  # given 0: t0 = .7533
        [0.1, 0.8, 0.1],  # given 1: t1 = .8
        [0.1, 0.1, 0.8], [0.6, 0.35, 0.05],  # given 2: t2 = (.8 + .05) / 2 = .425
    ])  # fmt: skip
    y = np.array([0, 0, 0, 1, 2, 2])
    _, off = compute_confident_joint(y, p, calibrate=False, return_indices_of_off_diagonals=True)
    assert off.tolist() == [2]
    assert not find_label_issues(y, p, filter_by="confident_learning").any()
    assert np.flatnonzero(find_label_issues(y, p, filter_by="predicted_neq_given")).tolist() == [5]


def test_rate_dispersion_hand_values_and_binary_asymmetric_noise():
    from truelabel.detect._rank import _rate_dispersion

    # columns: true 0 has 0 of 50 off the diagonal, true 1 has 20 of 50; pooled r = .2:
    # ((0 - 10)^2 + (20 - 10)^2) / (50 * .2 * .8) = 25 over 1 df
    assert _rate_dispersion(np.array([[50, 20], [0, 30]])) == pytest.approx(25.0)
    assert _rate_dispersion(np.array([[40, 10], [10, 40]])) == 0.0
    assert np.isnan(_rate_dispersion(np.array([[40, 0], [0, 40]])))
    # two classes, only class 0 ever mislabelled (as 1): the per-class rates carry the
    # information, the default uses them and beats self-confidence by far
    from sklearn.metrics import average_precision_score

    rng = np.random.default_rng(3)
    n = 2000
    true = rng.integers(0, 2, n)
    flipped = (true == 0) & (rng.random(n) < 0.3)
    labels = np.where(flipped, 1, true)
    z = rng.normal(size=(n, 2)) * 1.2 + 1.5 * np.eye(2)[true]
    p = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    ap = {
        m: average_precision_score(flipped, -get_label_quality_scores(labels, p, method=m))
        for m in ("noise_aware", "self_confidence")
    }
    assert ap["noise_aware"] > ap["self_confidence"] + 0.03, ap
