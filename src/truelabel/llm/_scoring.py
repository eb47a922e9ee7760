"""Class probabilities from first-token log-probabilities, exact for colliding names.

A class is verbalized by its name; the model's next-token distribution after the prompt
(``max_tokens=1``, top-N log-probabilities) is split over the classes by string
matching, no tokenizer needed. Texts are compared after dropping leading white space and
case-folding (``" Positive"`` counts for ``positive``). A returned token ``t`` after the
text ``s`` consumed so far (``x = s + t``) is

- **for class c** when ``x`` is a prefix of c's name, or ``x`` starts with the whole name
  followed by a character that is not a letter or digit (``"spam."``);
- **ambiguous** when that holds for several classes (first tokens that collide:
  ``" sci"`` for ``science`` and ``sci-fi``, a bare ``" "`` for every class, ``"spam"``
  for ``spam`` and ``spammer``). Its mass is split exactly by the chain rule: ``x`` is
  appended to the prompt and the next token's distribution is read the same way, up to
  ``max_depth`` extra requests deep; a branch still ambiguous there, or below
  ``min_branch_mass`` (a white-space token of 1% is not worth a request), is shared by its
  classes in proportion to the mass they already have (equally if they have none), which
  leaves the renormalised probabilities as they are;
- **outside** otherwise (another word, a refusal).

Mass a class never receives (none of its starts in the top N) is bounded above by the
smallest returned probability of the first step and by the mass the returned tokens leave
(1 - their sum): it gets that bound, so its log-probability
stays finite and calibration can still move it. An item whose top N holds no class at all
is reported as outside the class set (the caller gives it a uniform row and says so).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from ._errors import LLMResponseError

__all__ = ["StepResult", "classify_tokens", "parse_top_logprobs", "score_first_tokens"]


def _norm(text: str) -> str:
    return text.lstrip().casefold()


def parse_top_logprobs(choice: dict[str, Any]) -> list[tuple[str, float]] | None:
    """``[(token, prob)]`` of the first generated token of a completions ``choice``.

    Reads the OpenAI completions form (``logprobs.top_logprobs[0]`` = {token: logprob})
    and the chat-style form (``logprobs.content[0].top_logprobs`` = [{token, logprob}]);
    None when the server sent no log-probabilities. An answer with empty lists and empty
    text (llama-cpp-python omits the end-of-text token it stopped on) is ``[("", 1.0)]``:
    the model ends the text here, an approximation of its unknown probability.
    """
    lp = choice.get("logprobs")
    if not isinstance(lp, dict):
        return None
    top = lp.get("top_logprobs")
    if top == [] and lp.get("tokens") == [] and choice.get("text") == "":
        # llama-cpp-python leaves out an end-of-text token: the model stopped at once
        # (its greedy choice); read as certain end of text
        return [("", 1.0)]
    if isinstance(top, list) and top and isinstance(top[0], dict) and top[0]:
        pairs = list(top[0].items())
    else:
        content = lp.get("content")
        if not (isinstance(content, list) and content and isinstance(content[0], dict)):
            return None
        entries = content[0].get("top_logprobs") or []
        pairs = [(e.get("token"), e.get("logprob")) for e in entries if isinstance(e, dict)]
        if not pairs:
            return None
    out = []
    for token, logprob in pairs:
        if not isinstance(token, str) or not isinstance(logprob, int | float):
            raise LLMResponseError(
                f"a top_logprobs entry is not (token, logprob): {token!r}: {logprob!r}"
            )
        out.append((token, math.exp(logprob) if logprob > -745 else 0.0))
    return out


class StepResult:
    """One step split: ``credit[k]`` mass per class, ``branches`` ``{x: (mass, classes)}``
    still ambiguous, ``outside`` mass, ``floor`` = the bound on an unreturned token."""

    def __init__(self, n_classes: int) -> None:
        self.credit = np.zeros(n_classes)
        self.branches: dict[str, tuple[float, tuple[int, ...]]] = {}
        self.outside = 0.0
        self.floor = 0.0


def classify_tokens(
    top: Sequence[tuple[str, float]], consumed: str, targets: Sequence[str]
) -> StepResult:
    """Split one step's ``[(token, prob)]`` over ``targets`` (normalised class names).

    An empty token (how some servers show end-of-text) ends the answer: it counts for
    the class whose name is exactly the text consumed so far, else as outside.
    """
    res = StepResult(len(targets))
    # an unreturned token has at most the smallest returned probability and at most
    # the mass the returned tokens leave
    res.floor = min(min((p for _, p in top), default=0.0), max(0.0, 1.0 - sum(p for _, p in top)))
    for token, p in top:
        raw = consumed + token
        x = _norm(raw)
        if token == "":
            hits = [k for k, name in enumerate(targets) if name == x]
        else:
            hits = [
                k
                for k, name in enumerate(targets)
                if name.startswith(x) or (x.startswith(name) and not x[len(name)].isalnum())
            ]
        if not hits:
            res.outside += p
        elif len(hits) == 1:
            res.credit[hits[0]] += p
        else:
            mass, _ = res.branches.get(raw, (0.0, ()))
            res.branches[raw] = (mass + p, tuple(hits))
    return res


def score_first_tokens(
    prompts: Sequence[str],
    targets: Sequence[str],
    fetch: Callable[[list[str]], list[list[tuple[str, float]] | None]],
    *,
    max_depth: int = 2,
    min_branch_mass: float = 0.05,
) -> tuple[np.ndarray, np.ndarray]:
    """Class masses ``(n_items, n_classes)`` and each item's mass outside the classes.

    ``fetch(prompts)`` returns each prompt's next-token ``[(token, prob)]``: one batched
    call for every item, then one per depth for the ambiguous branches (chain rule: a
    branch of mass m adds m x the next step's class masses). Rows with no class mass at
    all are left zero (the caller reports them as outside the class set).
    """
    K = len(targets)
    n = len(prompts)
    masses = np.zeros((n, K))
    outside = np.zeros(n)
    floors = np.zeros(n)
    # frontier entries: (item, text consumed after the prompt, mass, candidate classes)
    frontier: list[tuple[int, str, float, tuple[int, ...]]] = [(i, "", 1.0, ()) for i in range(n)]
    for depth in range(max_depth + 1):
        tops = fetch([prompts[i] + x for i, x, _, _ in frontier])
        grown: list[tuple[int, str, float, tuple[int, ...]]] = []
        for (i, x, m, _ks), top in zip(frontier, tops, strict=True):
            if top is None:
                raise LLMResponseError("the server sent no log-probabilities for an item")
            step = classify_tokens(top, x, targets)
            if depth == 0:
                floors[i] = step.floor
            masses[i] += m * step.credit
            outside[i] += m * step.outside
            for bx, (bm, bks) in step.branches.items():
                grown.append((i, bx, m * bm, bks))
        frontier = []
        unresolved = []
        for i, x, m, ks in grown:
            if depth < max_depth and m >= min_branch_mass:
                frontier.append((i, x, m, ks))
            else:
                unresolved.append((i, m, ks))
        for i, m, ks in unresolved:  # shared in proportion to the classes' resolved mass
            own = masses[i, list(ks)]
            share = own / own.sum() if own.sum() > 0 else np.full(len(ks), 1.0 / len(ks))
            masses[i, list(ks)] += m * share
        if not frontier:
            break
    has_mass = masses.sum(axis=1) > 0
    unseen = (masses == 0) & has_mass[:, None]
    masses[unseen] = np.broadcast_to(floors[:, None], masses.shape)[unseen]
    return masses, outside
