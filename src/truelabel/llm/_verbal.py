"""Verbalizers: the words the model scores for each class, apart from the class labels.

A class label is what the data holds (``"ham"``); its verbalizer is what the model is asked
to answer and what its next tokens are matched against (``"normal message"``): a small
model never answers "ham" for a text message, it may well say "normal". The prompt lists
the verbalizers (with the class descriptions), few-shot answers are written with them, the
JSON fallback's enum holds them, and the scores come back under the class labels.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..exceptions import ValidationError

__all__ = ["check_verbalizers"]


def _norm(word: str) -> str:
    return " ".join(word.split()).casefold()


def check_verbalizers(verbalizers: Any, names: Sequence[str]) -> list[str]:
    """The word each class is scored by, in ``names`` order (``names`` themselves for None).

    Refused, each with a :class:`ValidationError` naming ``verbalizers``: a non-mapping; a
    key that is no class; a class with no word; a word that is not a non-empty string; two
    classes with the same word (after case-folding and white space); two words that start
    with the same word (``"not spam"`` / ``"not sure"``): their first tokens collide, so
    the first next-token step cannot tell them apart (and a word that is a whole-word
    prefix of another, ``"normal"`` / ``"normal message"``, never can).
    """
    if verbalizers is None:
        return list(names)
    if not isinstance(verbalizers, Mapping):
        raise ValidationError(
            "verbalizers",
            f"got {type(verbalizers).__name__}",
            "pass a dict {class: word(s) the model answers}, e.g. {'ham': 'normal message'}",
        )
    unknown = [k for k in verbalizers if k not in names]
    if unknown:
        raise ValidationError(
            "verbalizers",
            f"unknown class(es) {unknown} (the classes are {list(names)})",
            "key the dict by the class names",
        )
    missing = [n for n in names if n not in verbalizers]
    if missing:
        raise ValidationError(
            "verbalizers",
            f"no word for class(es) {missing}",
            "give every class a word (its own name is fine, e.g. {'spam': 'spam'})",
        )
    words = [verbalizers[n] for n in names]
    for name, word in zip(names, words, strict=True):
        if not isinstance(word, str) or not word.strip():
            raise ValidationError(
                "verbalizers", f"class {name!r} has word {word!r}", "pass a non-empty string"
            )
    seen: dict[str, str] = {}
    first: dict[str, str] = {}
    for name, word in zip(names, words, strict=True):
        key = _norm(word)
        if key in seen:
            raise ValidationError(
                "verbalizers",
                f"classes {seen[key]!r} and {name!r} both read {word!r}",
                "give each class its own word",
            )
        seen[key] = name
        head = key.split()[0]
        if head in first:
            other = first[head]
            raise ValidationError(
                "verbalizers",
                f"{verbalizers[other]!r} ({other}) and {word!r} ({name}) start with the same "
                f"word {head!r}: their first tokens collide",
                "start each class's words with a different word",
            )
        first[head] = name
    return [w.strip() for w in words]
