"""LLMJudge: how likely each given label is right, by an LLM (one score per item)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import TruelabelWarning, ValidationError, warn_at_caller
from ..model._textbase import check_texts
from ._calibrate import fit_temperature
from ._classifier import LLMClassifier
from ._client import LLMClient
from ._errors import LLMResponseError
from ._prompt import CONTENT_FREE, check_chat_template, render, verify_messages, verify_system
from ._scoring import score_first_tokens

__all__ = ["JUDGE_METHODS", "LLMJudge", "recheck_issues", "suspects"]

#: how :meth:`LLMJudge.score` reads the LLM
JUDGE_METHODS = ("classify", "verify", "both")


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, 1e-12, 1.0 - 1e-12)
    return np.log(p) - np.log1p(-p)


class LLMJudge(LLMClassifier):
    """Label-quality scores from an LLM, in [0, 1], lower = more likely wrong.

    ``score(texts, labels)`` is the judge's probability that each given label is right,
    read one of three ways (``method``):

    - ``"classify"`` (primary): ``p(y | x)`` from the classification prompt of
      :class:`LLMClassifier` (same scoring, verbalizers, calibration and cache), so
      ``1 - score`` is the judge's probability that the label is wrong;
    - ``"verify"`` (secondary): a yes/no question, "is label y right for text x?", inside
      the chat template with the cue ``Answer:``; ``p(yes)`` from the first-token
      log-probabilities of ``yes`` / ``no`` (same chain rule as the classes),
      contextually calibrated per label (the yes-bias the prompt shows on the content-free
      texts with that label is divided out: logit ``l - l_cf(y)``), then a temperature
      fitted by :meth:`fit` on checked labels (each asked with its own label, answer yes,
      and with the next class, answer no). Needs log-probabilities (no JSON fallback);
    - ``"both"``: the linear pool ``(1 - w) * p_classify + w * p_verify`` with
      ``w = verify_weight``.

    Fit the temperatures on labels that were checked, never on the labels being judged
    (they would teach it to trust them). Other parameters: :class:`LLMClassifier`.

    Parameters
    ----------
    method : {"classify", "verify", "both"}, default "classify"
    verify_weight : float in [0, 1], default 0.5
        Weight of the yes/no score in ``"both"``.

    Attributes
    ----------
    verify_content_free_ : ndarray, shape (n_classes,) or None
        After ``fit`` (verify / both, contextual): the content-free ``p(yes)`` per label.
    verify_temperature_ : float
        After ``fit`` (verify / both): 1.0, or the temperature fitted on labeled texts.

    Examples
    --------
    >>> from truelabel.llm import LLMJudge
    >>> judge = LLMJudge(["spam", "ham"], base_url="http://127.0.0.1:8080/v1", model="m",
    ...                  verbalizers={"spam": "spam", "ham": "normal message"}, method="both")
    >>> judge.score(["WIN a prize now"], ["ham"])  # doctest: +SKIP
    array([0.08])
    """

    def __init__(
        self,
        classes: Any,
        *,
        method: str = "classify",
        verify_weight: float = 0.5,
        base_url: str | None = None,
        model: str | None = None,
        template: Any = "chatml",
        verbalizers: dict[str, str] | None = None,
        examples: Sequence[tuple[str, str]] | None = None,
        n_examples: int | None = None,
        encoder: Any = None,
        scoring: str = "auto",
        top_logprobs: int = 20,
        max_depth: int = 2,
        min_branch_mass: float = 0.05,
        calibrate: str | None = "auto",
        max_text_chars: int = 2000,
        client: LLMClient | None = None,
    ) -> None:
        super().__init__(
            classes, base_url=base_url, model=model, template=template,
            verbalizers=verbalizers, examples=examples, n_examples=n_examples,
            encoder=encoder, scoring=scoring, top_logprobs=top_logprobs,
            max_depth=max_depth, min_branch_mass=min_branch_mass, calibrate=calibrate,
            max_text_chars=max_text_chars, client=client,
        )  # fmt: skip
        self.method = method
        self.verify_weight = verify_weight

    def _weight(self) -> float:
        """The weight of the yes/no score: 0 (classify), 1 (verify) or verify_weight."""
        if self.method not in JUDGE_METHODS:
            raise ValidationError("method", f"got {self.method!r}", f"pass one of {JUDGE_METHODS}")
        w = self.verify_weight
        if isinstance(w, bool) or not isinstance(w, int | float) or not 0 <= w <= 1:
            raise ValidationError("verify_weight", f"got {w!r}", "pass a number in [0, 1]")
        return {"classify": 0.0, "verify": 1.0, "both": float(w)}[self.method]

    # -- the yes/no prompt -------------------------------------------------------------
    def _verify_logits(self, items: list[str], y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Uncalibrated ``log m_yes - log m_no`` per (text, label) and the outside mask."""
        template = check_chat_template(self.template)
        words = self._words()
        system = verify_system(words, self._spec().descriptions)
        prompts = [
            render(template, verify_messages(system, t[: self.max_text_chars], words[k]), "Answer:")
            for t, k in zip(items, y, strict=True)
        ]
        try:
            masses, _ = score_first_tokens(
                prompts,
                ["yes", "no"],
                self._fetch_tops,
                max_depth=self.max_depth,
                min_branch_mass=self.min_branch_mass,
            )
        except LLMResponseError as exc:
            raise LLMResponseError(
                f"{exc}; the yes/no verification (method={self.method!r}) reads first-token "
                "log-probabilities and has no JSON fallback: use a server that returns "
                "logprobs, or method='classify'"
            ) from None
        outside = masses.sum(axis=1) <= 0
        logits = np.log(np.maximum(masses[:, 0], 1e-300)) - np.log(np.maximum(masses[:, 1], 1e-300))
        logits[outside] = 0.0
        return logits, outside

    def _verify_content_free(self) -> np.ndarray | None:
        """Content-free ``p(yes)`` per label (mean over the content-free texts answered)."""
        if not self._contextual():
            return None
        K = len(self._spec())
        n = len(CONTENT_FREE)
        y = np.repeat(np.arange(K), n)
        logits, outside = self._verify_logits(list(CONTENT_FREE) * K, y)
        p = 1.0 / (1.0 + np.exp(-logits.reshape(K, n)))
        kept = ~outside.reshape(K, n)
        count = kept.sum(axis=1)
        mean = np.where(kept, p, 0.0).sum(axis=1) / np.maximum(count, 1)
        return np.where(count > 0, mean, 0.5)  # nothing answered: no correction

    def _verify_calibrated(self, items: list[str], y: np.ndarray) -> np.ndarray:
        """Calibrated ``logit p(yes)`` per (text, label); outside answers are 0 (warned)."""
        logits, outside = self._verify_logits(items, y)
        if outside.any():
            warn_at_caller(
                f"the LLM answered neither yes nor no for {int(outside.sum())} of "
                f"{outside.size} labels (first: item {int(np.flatnonzero(outside)[0])}); "
                "they get p(yes) = 0.5",
                TruelabelWarning,
            )
        if "verify_content_free_" in self.__dict__:
            p_cf = self.verify_content_free_
        else:
            if "_verify_cf_unfitted" not in self.__dict__:
                self.__dict__["_verify_cf_unfitted"] = self._verify_content_free()
            p_cf = self.__dict__["_verify_cf_unfitted"]
        if p_cf is not None:
            logits = np.where(outside, 0.0, logits - _logit(p_cf)[y])
        return logits / float(getattr(self, "verify_temperature_", 1.0))

    def verify_proba(self, texts: Any, labels: Any) -> np.ndarray:
        """Calibrated ``p(yes)`` of the yes/no prompt per item, shape (n_items,)."""
        self._weight()
        self._check()
        items = check_texts(texts)
        y = self._label_indices(labels, len(items))
        return np.asarray(1.0 / (1.0 + np.exp(-self._verify_calibrated(items, y))))

    # -- estimator -----------------------------------------------------------------------
    def fit(self, texts: Any = None, labels: Any = None) -> LLMJudge:
        """Calibrate what ``method`` uses (see the class notes); returns self."""
        w = self._weight()
        if w < 1:
            super().fit(texts, labels)
        else:
            self._check()
            if labels is not None and texts is None:
                raise ValidationError("texts", "labels given without texts", "pass both")
        if w > 0:
            self.__dict__.pop("_verify_cf_unfitted", None)
            self.verify_content_free_ = self._verify_content_free()
            self.verify_temperature_ = 1.0
            if labels is not None:
                items = check_texts(texts)
                y = self._label_indices(labels, len(items))
                other = (y + 1) % len(self._spec())
                right = self._verify_calibrated(items, y)
                wrong = self._verify_calibrated(items, other)
                logits = np.zeros((2 * len(items), 2))
                logits[:, 0] = np.concatenate([right, wrong])
                target = np.repeat([0, 1], len(items))  # column 0 = yes
                self.verify_temperature_ = fit_temperature(logits, target)
        return self

    def score(self, texts: Any, labels: Any) -> np.ndarray:
        """Probability that each label is right, shape (n_items,), float64 in [0, 1]."""
        w = self._weight()
        self._check()
        items = check_texts(texts)
        y = self._label_indices(labels, len(items))
        out = np.zeros(len(items))
        if w < 1:
            out += (1.0 - w) * self.predict_proba(items)[np.arange(len(items)), y]
        if w > 0:
            out += w / (1.0 + np.exp(-self._verify_calibrated(items, y)))
        return out


def suspects(score: np.ndarray, labelled: np.ndarray, top: int) -> np.ndarray:
    """Rows of the ``top`` lowest scores among labelled rows with a score (ties by row)."""
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValidationError("top", f"got {top!r}", "pass an int >= 1, e.g. 50")
    rows = np.flatnonzero(labelled & ~np.isnan(score))
    return rows[np.argsort(score[rows], kind="stable")[:top]]


def recheck_issues(
    issues: pd.DataFrame, texts: Sequence[str], judge: LLMJudge, *, top: int = 50
) -> pd.Series:
    """The judge's score for the ``top`` labels an audit found most likely wrong.

    Parameters
    ----------
    issues : DataFrame
        An audit's issues (``AuditResult.issues``): one row per item in input order, with
        ``given_label`` and ``label_score`` (lower = more likely wrong).
    texts : sequence of str
        The items' texts, in the same order.
    judge : LLMJudge
    top : int, default 50
        How many labels to re-check: the ``top`` lowest ``label_score`` among labelled rows
        (ties by position), so the LLM's cost is bounded whatever the data size.

    Returns
    -------
    Series ``judge_score`` on ``issues.index``: :meth:`LLMJudge.score` of the given label
    for the re-checked rows (lower = the judge doubts the label too), NaN for the others.
    """
    suspects(np.zeros(0), np.zeros(0, dtype=bool), top)  # checks top
    missing = [c for c in ("given_label", "label_score") if c not in issues]
    if missing:
        raise ValidationError(
            "issues", f"has no column(s) {missing}", "pass an audit's issues with label issues"
        )
    if len(texts) != len(issues):
        raise ValidationError(
            "texts",
            f"has {len(texts)} texts for {len(issues)} issue rows",
            "pass one text per item, in the audit's input order",
        )
    labelled = issues["given_label"].notna().to_numpy()
    pick = suspects(issues["label_score"].to_numpy(dtype=np.float64), labelled, top)
    values = np.full(len(issues), np.nan)
    if pick.size:
        given = issues["given_label"].to_numpy(dtype=object)[pick]
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            values[pick] = judge.score([str(texts[i]) for i in pick], [str(g) for g in given])
        for w in caught:  # the judge counts positions among the re-checked texts: name the row
            message = str(w.message)
            if issubclass(w.category, TruelabelWarning):
                message = _FIRST_ITEM.sub(
                    lambda m: f"(first: row {issues.index[pick[int(m.group(1))]]!r})", message
                )
            warn_at_caller(message, w.category)
    return pd.Series(values, index=issues.index, name="judge_score")


#: "(first: item K)" in the classifier's and judge's warnings: K counts the texts scored
_FIRST_ITEM = re.compile(r"\(first: item (\d+)\)")
