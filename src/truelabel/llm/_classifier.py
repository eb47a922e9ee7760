"""LLMClassifier: an OpenAI-compatible LLM as a calibrated text classifier."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..exceptions import NotFittedError, TruelabelWarning, ValidationError, warn_at_caller
from ..model._textbase import TextClassifierBase, check_texts, softmax_rows
from ._calibrate import fit_temperature, log_loss_at
from ._client import LLMClient
from ._json import json_votes, vote_probs
from ._prompt import CONTENT_FREE, build_messages, check_chat_template, render, system_text
from ._scoring import parse_top_logprobs, score_first_tokens
from ._verbal import check_verbalizers

__all__ = ["LLMClassifier", "LLMScores"]

SCORINGS = ("auto", "logprobs", "json")
CALIBRATIONS = ("auto", "contextual", None)


@dataclass(frozen=True)
class LLMScores:
    """Uncalibrated answers for some texts.

    ``probs`` (n_items, n_classes): the class masses renormalised (logprobs) or smoothed
    vote shares (json); ``class_mass``: the share of the next-token probability on the
    classes (1.0 for a json answer inside the classes); ``outside``: items answered with
    nothing in the class set (uniform rows); ``method``: ``"logprobs"`` or ``"json"``.
    """

    probs: np.ndarray
    class_mass: np.ndarray
    outside: np.ndarray
    method: str


def _choice(answer: dict[str, Any]) -> dict[str, Any]:
    choice = answer["choices"][0] if answer["choices"] else None
    if not isinstance(choice, dict):
        from ._errors import LLMResponseError

        raise LLMResponseError(f"an answer has an empty 'choices' list: {str(answer)[:200]!r}")
    return choice


class LLMClassifier(TextClassifierBase):
    """Classify texts with any OpenAI-compatible LLM; calibrated class probabilities.

    Scoring (``scoring="logprobs"``): one ``/completions`` request per text with the
    chat-templated prompt, ``max_tokens=1`` and the top ``top_logprobs`` next tokens; the
    next-token mass is split over the class names (first tokens that several names share
    are resolved by the chain rule with up to ``max_depth`` further requests, see
    :mod:`truelabel.llm._scoring`). Fallback (``scoring="json"``, or ``"auto"`` when the
    server sends no log-probabilities, with a warning): ``/chat/completions`` with a JSON
    schema whose ``label`` is one of the classes; a text's probabilities are then
    ``(one-hot + 1/2) / (1 + K/2)`` (Jeffreys-smoothed vote), which only a temperature
    fitted on labels makes calibrated. An answer outside the class set (no class among
    the top tokens, or a JSON label that is no class) gets a uniform row, so nothing
    downstream trusts it, and a :class:`TruelabelWarning` names the items.

    Calibration of :meth:`predict_proba`: contextual calibration (``calibrate=
    "contextual"``, logprobs only): the probabilities the same prompt gives the
    content-free texts ``"N/A"``, ``"[MASK]"`` and ``""`` (mean ``p_cf``) are divided out,
    ``p ~ p / p_cf`` (Zhao et al. 2021); then the temperature fitted by :meth:`fit` on any
    labeled texts (minimum log loss of ``softmax(log p / T)``; 1 without labels).
    Contextual calibration can overshoot (a model whose content-free answer is far from
    its answers on real texts ends up predicting one class everywhere): with ``calibrate=
    "auto"`` (the default) :meth:`fit` given labeled texts keeps it only when it lowers
    their log loss (each side at its own fitted temperature), and ``calibration_`` says
    which was kept; without labels ``"auto"`` is ``"contextual"``.

    Parameters
    ----------
    classes : list of str, dict of str to str, or path
        Class names or ``{name: description}``.
    verbalizers : dict of str to str or None
        The words the model is asked to answer and scored by, per class (``{"ham":
        "normal message", "spam": "spam"}``); every class needs one, words must differ
        from their first word on (see :func:`~truelabel.llm._verbal.check_verbalizers`).
        None: the class names.
    base_url, model : str or None
        The server (e.g. ``"http://127.0.0.1:8080/v1"``) and model name; None reads
        ``$TRUELABEL_LLM_URL`` / ``$TRUELABEL_LLM_MODEL``. Ignored when ``client`` is given.
    template : str or dict, default "chatml"
        The model's chat template: ``"chatml"`` (SmolLM2, Qwen), ``"llama3"``, ``"phi3"``,
        ``"plain"``, or a dict (see :data:`truelabel.llm.CHAT_TEMPLATES`); for a GGUF file
        ``template_name_for(read_gguf_chat_template(path))``.
    examples : sequence of (text, label) or None
        Few-shot examples, given as user/assistant turns before the text.
    n_examples : int or None
        None: every example for every text; k: the k examples nearest each text (cosine
        of ``encoder`` embeddings), the nearest last.
    encoder : Encoder or None
        For choosing examples (None: the default ONNX sentence encoder).
    scoring : {"auto", "logprobs", "json"}, default "auto"
    top_logprobs : int, default 20
        Next tokens asked for (OpenAI's own API allows at most 5).
    max_depth : int, default 2
        Further requests to split a first token shared by several class names.
    min_branch_mass : float, default 0.05
        A shared first token with less probability than this is not split by a request:
        its classes share it in proportion to their other mass.
    calibrate : {"auto", "contextual", None}, default "auto"
        ``"auto"``: contextual calibration unless labeled texts given to :meth:`fit` show
        it raises their log loss.
    max_text_chars : int, default 2000
        Longer texts are cut (the prompt must fit the model's context).
    client : LLMClient or None
        Carries the key, concurrency, retries, timeouts, cache and prices; None builds one
        from ``base_url`` and ``model`` with the defaults (key from ``$TRUELABEL_LLM_KEY``).

    Attributes
    ----------
    classes_ : ndarray of str
    content_free_probs_ : ndarray, shape (n_classes,)
        After ``fit`` (logprobs scoring with contextual calibration): ``p_cf``.
    temperature_ : float
        After ``fit``: 1.0, or the temperature fitted on the labeled texts.
    calibration_ : {"contextual", None}
        After ``fit``: the calibration in use (``"auto"`` resolved).
    method_ : str
        After ``fit``: ``"logprobs"`` or ``"json"``.

    Examples
    --------
    >>> from truelabel.llm import LLMClassifier
    >>> clf = LLMClassifier({"positive": "likes the film", "negative": "dislikes it"},
    ...                     base_url="http://127.0.0.1:8080/v1", model="smollm2")
    >>> clf.fit(["great fun", "dull"], ["positive", "negative"])  # doctest: +SKIP
    >>> clf.predict_proba(["a masterpiece"]).round(2)  # doctest: +SKIP
    array([[0.93, 0.07]])
    """

    def __init__(
        self,
        classes: Any,
        *,
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
        self.classes = classes
        self.base_url = base_url
        self.model = model
        self.template = template
        self.verbalizers = verbalizers
        self.examples = examples
        self.n_examples = n_examples
        self.encoder = encoder
        self.scoring = scoring
        self.top_logprobs = top_logprobs
        self.max_depth = max_depth
        self.min_branch_mass = min_branch_mass
        self.calibrate = calibrate
        self.max_text_chars = max_text_chars
        self.client = client

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        for key in ("_client", "_probe", "_method"):  # connections, server facts: found again
            state.pop(key, None)
        return state

    # -- settings ------------------------------------------------------------------------
    def _spec(self) -> Any:
        # the chat template is not a class-prompt template: check it here, not in the base
        from ..model._classes import check_classes

        key = repr(self.classes)
        cached = self.__dict__.get("_spec_cache")
        if cached is None or cached[0] != key:
            cached = (key, check_classes(self.classes))
            self.__dict__["_spec_cache"] = cached
        return cached[1]

    def _words(self) -> list[str]:
        """The verbalizer of each class, in class order."""
        return check_verbalizers(self.verbalizers, self._spec().names)

    def _check(self) -> None:
        check_chat_template(self.template)
        self._words()
        if self.scoring not in SCORINGS:
            raise ValidationError("scoring", f"got {self.scoring!r}", f"pass one of {SCORINGS}")
        if self.calibrate not in CALIBRATIONS:
            raise ValidationError(
                "calibrate", f"got {self.calibrate!r}", "pass 'auto', 'contextual' or None"
            )
        for name in ("top_logprobs", "max_depth", "max_text_chars", "n_examples"):
            value = getattr(self, name)
            low = 0 if name == "max_depth" else 1
            if name == "n_examples" and value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise ValidationError(name, f"got {value!r}", f"pass an integer >= {low}")
        m = self.min_branch_mass
        if isinstance(m, bool) or not isinstance(m, int | float) or not 0 <= m <= 1:
            raise ValidationError("min_branch_mass", f"got {m!r}", "pass a number in [0, 1]")
        if self.client is not None and not isinstance(self.client, LLMClient):
            raise ValidationError(
                "client", f"got {type(self.client).__name__}", "pass an LLMClient or None"
            )

    def _get_client(self) -> LLMClient:
        if self.client is not None:
            return self.client
        cached = self.__dict__.get("_client")
        if cached is None or cached[0] != (self.base_url, self.model):
            cached = ((self.base_url, self.model), LLMClient(self.base_url, self.model))
            self.__dict__["_client"] = cached
        return cached[1]

    def _examples(self) -> list[tuple[str, str]]:
        if self.examples is None:
            return []
        names = self._spec().names
        out = []
        for j, pair in enumerate(self.examples):
            ok = isinstance(pair, tuple | list) and len(pair) == 2
            if not ok or not isinstance(pair[0], str) or pair[1] not in names:
                raise ValidationError(
                    "examples",
                    f"example {j} is {pair!r}",
                    f"pass (text, label) pairs with a label among {names}",
                )
            out.append((pair[0], pair[1]))
        return out

    # -- prompts -------------------------------------------------------------------------
    def _shots(self, texts: list[str]) -> list[list[tuple[str, str]]]:
        examples = self._examples()
        k = self.n_examples
        if not examples or k is None or k >= len(examples):
            return [examples] * len(texts)
        enc = self._get_encoder()
        E = np.asarray(enc.encode([t for t, _ in examples]), dtype=np.float64)
        X = np.asarray(enc.encode(texts), dtype=np.float64)
        E /= np.maximum(np.linalg.norm(E, axis=1, keepdims=True), 1e-12)
        X /= np.maximum(np.linalg.norm(X, axis=1, keepdims=True), 1e-12)
        sims = X @ E.T
        # the k most similar, nearest last; ties by example order (stable sort)
        order = np.argsort(-sims, axis=1, kind="stable")[:, :k][:, ::-1]
        return [[examples[j] for j in row] for row in order]

    def _messages(self, texts: list[str], json_answers: bool) -> list[list[tuple[str, str]]]:
        spec = self._spec()
        word = dict(zip(spec.names, self._words(), strict=True))
        system = system_text(list(word.values()), spec.descriptions)
        if json_answers:
            system += ' Reply with JSON: {"label": "<class name>"}.'
        out = []
        for text, shots in zip(texts, self._shots(texts), strict=True):
            said = [(t, word[y]) for t, y in shots]
            msgs = build_messages(system, text[: self.max_text_chars], said)
            if json_answers:
                msgs = [
                    (r, json.dumps({"label": c[7:]}) if r == "assistant" else c) for r, c in msgs
                ]
            out.append(msgs)
        return out

    # -- scoring -------------------------------------------------------------------------
    def _fetch_tops(self, prompts: list[str]) -> list[list[tuple[str, float]] | None]:
        # the "auto" probe's answer is reused once (it is the first item's request)
        probe = self.__dict__.pop("_probe", None)
        if probe is not None and prompts and prompts[0] == probe[0]:
            return [probe[1], *self._fetch_tops(prompts[1:])] if len(prompts) > 1 else [probe[1]]
        body = {"max_tokens": 1, "temperature": 0.0, "logprobs": self.top_logprobs}
        answers = self._get_client().post_many(
            "completions", [{**body, "prompt": p} for p in prompts]
        )
        return [parse_top_logprobs(_choice(a)) for a in answers]

    def _resolve_method(self, probe_text: str) -> str:
        """The scoring used: ``scoring``, or for "auto" whether the server sends
        log-probabilities (one probe request, cached; remembered)."""
        if self.scoring != "auto":
            return str(self.scoring)
        where = (self.base_url, self.model, id(self.client))
        remembered = self.__dict__.get("_method")
        method = remembered[1] if remembered is not None and remembered[0] == where else None
        if method is None:
            template = check_chat_template(self.template)
            probe = render(template, self._messages([probe_text], False)[0], "Label:")
            top = self._fetch_tops([probe])[0]
            method = "logprobs" if top is not None else "json"
            self.__dict__["_probe"] = (probe, top)
            if method == "json":
                warn_at_caller(
                    "the LLM server sent no log-probabilities: falling back to constrained "
                    "JSON answers, whose probabilities are smoothed votes; fit(texts, labels) "
                    "to calibrate them, or use a server with logprobs (llama.cpp, vLLM)",
                    TruelabelWarning,
                )
            self.__dict__["_method"] = (where, method)
        return str(method)

    def score_texts(self, texts: Sequence[str], *, _content_free: bool = False) -> LLMScores:
        """Uncalibrated answers of the LLM for ``texts`` (see :class:`LLMScores`)."""
        self._check()
        items = list(texts) if _content_free else check_texts(texts)
        K = len(self._spec())
        method = self._resolve_method(items[0])
        if method == "logprobs":
            return self._score_logprobs(items, K)
        return self._score_json(items, K)

    def _score_logprobs(self, items: list[str], K: int) -> LLMScores:
        from ._errors import LLMResponseError

        template = check_chat_template(self.template)
        prompts = [render(template, m, "Label:") for m in self._messages(items, False)]
        targets = [" ".join(w.split()).casefold() for w in self._words()]
        try:
            masses, _ = score_first_tokens(
                prompts,
                targets,
                self._fetch_tops,
                max_depth=self.max_depth,
                min_branch_mass=self.min_branch_mass,
            )
        except LLMResponseError as exc:
            raise LLMResponseError(
                f"{exc}; the server does not return log-probabilities: pass scoring='json' "
                "(or 'auto') for the constrained-JSON fallback"
            ) from None
        total = masses.sum(axis=1)
        outside = total <= 0
        probs = np.full((len(items), K), 1.0 / K)
        probs[~outside] = masses[~outside] / total[~outside, None]
        class_mass = np.minimum(total, 1.0)
        return LLMScores(probs, class_mass, outside, "logprobs")

    def _score_json(self, items: list[str], K: int) -> LLMScores:
        votes = json_votes(self._get_client(), self._messages(items, True), self._words())
        outside = votes < 0
        return LLMScores(vote_probs(votes, K), (~outside).astype(float), outside, "json")

    # -- estimator -----------------------------------------------------------------------
    def fit(self, texts: Any = None, labels: Any = None) -> LLMClassifier:
        """Contextual calibration (no texts needed) and, given labeled ``texts``, the
        temperature of minimum log loss on them; returns self."""
        self._check()
        if labels is not None and texts is None:
            raise ValidationError("texts", "labels given without texts", "pass both")
        self.method_ = self._resolve_method(CONTENT_FREE[0])
        p_cf = self._content_free()
        self.content_free_probs_ = p_cf
        self.calibration_ = "contextual" if p_cf is not None else None
        self.temperature_ = 1.0
        if labels is not None:
            items = check_texts(texts)
            y = self._label_indices(labels, len(items))
            scores = self.score_texts(items)
            logits = self._calibrated_logits(scores)
            self.temperature_ = fit_temperature(logits, y)
            if p_cf is not None and self.calibrate == "auto":
                raw = np.log(np.maximum(scores.probs, 1e-300))
                t_raw = fit_temperature(raw, y)
                if log_loss_at(raw, y, t_raw) < log_loss_at(logits, y, self.temperature_):
                    self.content_free_probs_ = None
                    self.calibration_ = None
                    self.temperature_ = t_raw
        return self

    def _content_free(self) -> np.ndarray | None:
        if not self._contextual() or self._resolve_method(CONTENT_FREE[0]) != "logprobs":
            return None  # a one-hot vote has no bias to divide out
        scores = self.score_texts(list(CONTENT_FREE), _content_free=True)
        kept = ~scores.outside
        if not kept.any():
            warn_at_caller(
                "contextual calibration skipped: the model answered no class for the "
                "content-free inputs",
                TruelabelWarning,
            )
            return None
        p = scores.probs[kept].mean(axis=0)
        return p / p.sum()

    def _contextual(self) -> bool:
        """Whether contextual calibration is asked for (``"auto"`` starts with it)."""
        return self.calibrate in ("auto", "contextual")

    def _calibrated_logits(self, scores: LLMScores) -> np.ndarray:
        logits = np.log(np.maximum(scores.probs, 1e-300))
        p_cf = getattr(self, "content_free_probs_", None)
        fitted = "calibration_" in self.__dict__
        if p_cf is None and not fitted and self._contextual() and scores.method == "logprobs":
            p_cf = self.__dict__.get("_p_cf_unfitted")
            if p_cf is None:
                p_cf = self._content_free()
                self.__dict__["_p_cf_unfitted"] = p_cf
        if p_cf is not None and scores.method == "logprobs":
            logits = logits - np.log(p_cf)
            logits[scores.outside] = 0.0
        return logits

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """Calibrated class probabilities, (n_items, n_classes) in ``classes_`` order.

        Works before :meth:`fit` (contextual calibration computed on first use, no
        temperature). Items answered outside the class set get uniform rows (warned).
        """
        return self.proba_and_outside(texts)[0]

    def proba_and_outside(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`predict_proba` and the mask of the items answered outside the classes."""
        scores = self.score_texts(texts)
        if scores.outside.any():
            idx = np.flatnonzero(scores.outside)
            warn_at_caller(
                f"the LLM answered outside the class set for {idx.size} of "
                f"{scores.outside.size} texts (first: item {int(idx[0])}); they get uniform "
                "probabilities: check the classes, the template or the model",
                TruelabelWarning,
            )
        T = float(getattr(self, "temperature_", 1.0))
        return softmax_rows(self._calibrated_logits(scores) / T), scores.outside

    def predict_proba_embeddings(self, X: Any) -> np.ndarray:
        raise NotFittedError("LLMClassifier reads texts, not embeddings: call predict_proba")
