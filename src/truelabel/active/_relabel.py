"""Noisy annotators: consensus of the answers, annotator accuracy, and the value of one more
answer for an item already labeled (a re-label).

The truth of a labeled item ``i`` is uncertain: ``pi_i(c) ~ p_i(c) * prod_answers P(a | c)``,
the out-of-fold model probability (a model that never saw the item's answers) times the
one-coin likelihood of its answers (annotator ``j`` is right with probability ``q_j`` and
otherwise picks one of the other ``K - 1`` classes evenly). Its label is the consensus of the
answers (ties broken by the model), right with probability ``pi_i(label)``.

One more answer ``a`` from an annotator of accuracy ``q`` changes the consensus to
``l'(a)``; the expected probability that the label is right afterwards is
``sum_a pi_i(l'(a)) P(a | l'(a))``. Its gain over ``pi_i(label)`` is the value of information
of a re-label (exact, ``O(K^2)`` per item).

A new item has no answer yet: the learner's answer for it is the model's guess, right with
the model's top probability ``A_j``; after one answer it is that answer, right with
probability ``q`` whatever the model thought (``sum_a P(a) P(truth = a | a) = q``), so the
same currency gives it ``q - A_j`` (:func:`new_item_gain`). Both count answers that become
right, not how far a label's effect spreads through the model (taken as alike for both).
The learner takes a re-label when its gain per unit of cost beats the new item it would
displace from the batch. For one answer on a binary item the model disagrees with, this reads: re-label when
``pi_i < A_j`` (ask where the current answer is least likely right): the doubt about a label
must exceed the model's doubt about the next new item. A weak model (``A_j`` near ``1/K``)
leaves no room for re-labels; a model more accurate than the annotators spends on them.
The earlier rule (``2 gain > 2q - 1``, a label counted as one right or wrong vote whatever
the model's stage) re-labelled on TREC, where new labels still teach much, and not on SMS.

From single answers the annotators' noise and the model's confident mistakes are not
separable: a label the out-of-fold model contradicts is doubtful under either. Repeated
answers separate them, and the policy predicts each of them: :func:`repeat_yield` counts
the repeats that disagreed with the label before them against the number its own truth model
expected. A re-label's gain comes only from answers that change the label, so the learner
scales every re-label's gain by ``(1 + observed) / (1 + expected)`` (a gamma-Poisson
posterior mean of that rate, prior one expected change): with a clean annotator (every
repeat confirms, as 36 of 36 did on SMS) re-labels stop paying once a few have confirmed;
with a noisy one (repeats disagree as often as predicted, rate ~1) nothing changes.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "consensus_loglik",
    "new_item_gain",
    "pair_accuracy",
    "relabel_gain",
    "repeat_yield",
    "symmetric_accuracy",
]

_CELLS = 1 << 21  # items x K x K cells per block (16 MiB of float64)


def consensus_loglik(
    item: np.ndarray, label: np.ndarray, q: np.ndarray, n_items: int, n_classes: int
) -> np.ndarray:
    """``(n_items, n_classes)`` one-coin log-likelihood of each item's answers under each class.

    ``item``, ``label`` are per-answer codes, ``q`` the accuracy of the answer's annotator.
    """
    q = np.clip(q, 1.0 / n_classes + 1e-6, 1.0 - 1e-6)
    off = np.log((1.0 - q) / (n_classes - 1))
    ll = np.zeros((n_items, n_classes))
    np.add.at(ll, item, off[:, None])
    np.add.at(ll, (item, label), np.log(q) - off)
    return ll


def consensus_labels(loglik: np.ndarray, model_probs: np.ndarray) -> np.ndarray:
    """Argmax of the answers' likelihood; ties broken by the model (then by class order)."""
    top = loglik.max(axis=1, keepdims=True)
    tied = loglik >= top - 1e-9
    return np.asarray(np.argmax(np.where(tied, model_probs + 1.0, 0.0), axis=1))


def symmetric_accuracy(agreement: float, n_classes: int) -> float:
    """The accuracy ``q`` whose two independent answers agree with probability
    ``q^2 + (1 - q)^2 / (K - 1)`` equal to ``agreement`` (``q >= 1/K``)."""
    k = n_classes
    # (k/(k-1)) q^2 - (2/(k-1)) q + 1/(k-1) - agreement = 0
    a, b, c = k / (k - 1), -2.0 / (k - 1), 1.0 / (k - 1) - agreement
    disc = max(b * b - 4 * a * c, 0.0)
    return float(np.clip((-b + np.sqrt(disc)) / (2 * a), 1.0 / k, 1.0))


def pair_accuracy(
    item: np.ndarray, label: np.ndarray, n_classes: int, prior: float, strength: float
) -> float:
    """Accuracy of one annotator from how often its repeated answers on an item agree.

    Pairs of answers on the same item: ``sum_i C(n_i, 2)``, agreeing pairs
    ``sum_{i,c} C(n_ic, 2)``; shrunk towards the agreement ``prior`` implies, with ``strength``
    pseudo-pairs, then solved for ``q`` (:func:`symmetric_accuracy`).
    """
    k = n_classes
    if item.size == 0:
        return prior
    key = item.astype(np.int64) * k + label
    _, n_ic = np.unique(key, return_counts=True)
    _, n_i = np.unique(item, return_counts=True)
    agree = float((n_ic * (n_ic - 1) / 2).sum())
    pairs = float((n_i * (n_i - 1) / 2).sum())
    prior_agree = prior**2 + (1 - prior) ** 2 / (k - 1)
    return symmetric_accuracy((agree + strength * prior_agree) / (pairs + strength), k)


def relabel_gain(loglik: np.ndarray, model_probs: np.ndarray, q: float) -> np.ndarray:
    """Expected gain in P(label right) from one more answer of accuracy ``q``, per item.

    ``loglik``: answers' log-likelihood per class; ``model_probs``: out-of-fold model
    probabilities (the prior of the truth). Exact over the ``K`` possible answers.
    """
    m, k = loglik.shape
    out = np.empty(m)
    q = float(np.clip(q, 1.0 / k + 1e-6, 1.0 - 1e-6))
    log_on, log_off = np.log(q), np.log((1.0 - q) / (k - 1))
    eye = np.eye(k, dtype=bool)
    block = max(1, _CELLS // (k * k))
    for s in range(0, m, block):
        ll = loglik[s : s + block]
        p = np.maximum(model_probs[s : s + block], 1e-12)
        post = np.log(p) + ll
        post = np.exp(post - post.max(axis=1, keepdims=True))
        post /= post.sum(axis=1, keepdims=True)
        now = post[np.arange(ll.shape[0]), consensus_labels(ll, p)]
        # consensus after answer a (axis 1): likelihood + log P(a | c)
        ll_after = ll[:, None, :] + np.where(eye, log_on, log_off)[None, :, :]
        top = ll_after.max(axis=2, keepdims=True)
        tied = ll_after >= top - 1e-9
        after = np.argmax(np.where(tied, p[:, None, :] + 1.0, 0.0), axis=2)  # (m, a)
        p_lab = np.take_along_axis(post, after, axis=1)  # pi(l'(a))
        p_ans = np.where(after == np.arange(k)[None, :], q, (1.0 - q) / (k - 1))
        out[s : s + block] = (p_lab * p_ans).sum(axis=1) - now
    return out


def repeat_yield(
    item: np.ndarray, label: np.ndarray, q: np.ndarray, model_probs: np.ndarray
) -> tuple[float, float]:
    """``(observed, expected)`` disagreements of repeated answers with the label before them.

    ``item``, ``label``, ``q``: per-answer item position, class code and annotator accuracy,
    in the order the answers came; ``model_probs``: ``(n_items, K)`` out-of-fold
    probabilities. Every answer after an item's first is a repeat: it disagrees with the
    consensus of the item's earlier answers (ties to the model) or not (observed); the
    policy's own model of the truth (``pi ~ p * P(earlier answers | c)``, one-coin) predicts
    it disagrees with probability ``1 - pi(l) q - (1 - pi(l)) (1 - q) / (K - 1)`` (expected).
    A re-label's gain comes only from the answers that change the label, so ``observed /
    expected`` is how far the policy over- or under-rates re-labels on the items it picked:
    when the model's confident mistakes pass for annotator noise (the two are not separable
    from single answers), repeats keep confirming and ``observed`` stays below ``expected``.
    """
    k = model_probs.shape[1]
    order = np.argsort(item, kind="stable")
    it, lab = item[order], label[order]
    qc = np.clip(np.asarray(q, dtype=np.float64)[order], 1.0 / k + 1e-6, 1.0 - 1e-6)
    keep = np.bincount(it)[it] >= 2  # answers of items asked more than once
    it, lab, qc = it[keep], lab[keep], qc[keep]
    m = it.size
    if m == 0:
        return 0.0, 0.0
    first = np.r_[True, it[1:] != it[:-1]]
    contrib = np.repeat(np.log((1.0 - qc) / (k - 1))[:, None], k, axis=1)
    contrib[np.arange(m), lab] = np.log(qc)
    before = np.cumsum(contrib, axis=0) - contrib  # all answers before this one, any item
    start = np.maximum.accumulate(np.where(first, np.arange(m), 0))
    rep = ~first
    ll = (before - before[start])[rep]  # this item's earlier answers only
    p = np.maximum(model_probs[it[rep]], 1e-12)
    now = consensus_labels(ll, p)
    post = np.log(p) + ll
    post = np.exp(post - post.max(axis=1, keepdims=True))
    pi = post[np.arange(now.size), now] / post.sum(axis=1)
    qr = qc[rep]
    expected = float((1.0 - pi * qr - (1.0 - pi) * (1.0 - qr) / (k - 1)).sum())
    return float((lab[rep] != now).sum()), expected


def new_item_gain(pool_probs: np.ndarray, temperature: float, q: float) -> np.ndarray:
    """Expected gain in P(right) at an unlabeled item from one answer of accuracy ``q``.

    Before, the item's answer is the model's guess, right with its top probability (at the
    calibrated ``temperature``); after, it is the answer, right with probability ``q``
    whatever the model thought: ``sum_a P(a) P(truth = a | a) = q``. Gain: ``q - max_c p(c)``.
    """
    z = np.log(np.maximum(np.asarray(pool_probs, dtype=np.float64), 1e-300)) / temperature
    z -= z.max(axis=1, keepdims=True)
    return np.asarray(q - 1.0 / np.exp(z).sum(axis=1))  # the top class has exp(0) = 1
