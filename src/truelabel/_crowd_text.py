"""Item texts -> a classifier's cross-fitted ``pred_probs`` for model-assisted consensus
(``truelabel audit annotations.csv --annotations --items items.csv --text-col text``).

The classifier is the text audit's (:func:`truelabel._text_vectors.encode_texts`): the
default sentence encoder when the ``[text]`` extra is installed, else TF-IDF (said), with
out-of-fold logistic regressions. It is trained on the crowd's majority vote of each item
(ties broken at random from the seed), the same target cleanlab's CROWDLAB uses; every
item's probabilities come from folds that never saw it, so the model cannot echo that
item's own answers back to the consensus.

Argument names in errors are the command-line flags (``--items``, ``--text-col``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .aggregate import Annotations, MajorityVote
from .exceptions import ValidationError

__all__ = ["ItemModel", "item_text_pred_probs", "read_item_texts"]

_TEXT_GUESSES = ("text", "sentence", "content")


@dataclass
class ItemModel:
    """The classifier's probabilities (rows in the table's item order) and what made them."""

    pred_probs: np.ndarray
    source: str  # "out-of-fold (logistic regression on ...)"
    encoder: dict[str, str]  # truelabel._text_vectors.encoder_info


def read_item_texts(
    path: str | Path, table: Annotations, *, text_col: str | None = None
) -> list[str]:
    """The text of every annotated item, in the table's item order.

    The items table's id column has the name of the annotations' item column (else
    ``item_id`` / ``item``); ``text_col`` defaults to ``text``. Items the table lists but
    nobody annotated are ignored; an annotated item without a row is an error.
    """
    from ._consensus import _pick, _read

    p = Path(path)
    df = _read(p)
    cols = [str(c) for c in df.columns]
    item = table.columns[0] if table.columns[0] in cols else None
    if item is None:
        try:
            item = _pick("--item-col", None, df.columns, p)
        except ValidationError as err:
            raise ValidationError(
                "--items",
                f"{p.name} has no item column {table.columns[0]!r} nor item_id/item "
                f"(columns: {', '.join(cols[:12])})",
                "name its id column like the annotations' item column",
            ) from err
    if text_col is None:
        text_col = next((c for c in _TEXT_GUESSES if c in cols), None)
        if text_col is None:
            raise ValidationError(
                "--text-col",
                f"not given and {p.name} has no text column (columns: {', '.join(cols[:12])})",
                "name the column: --text-col COLUMN",
            )
    elif text_col not in cols:
        raise ValidationError(
            "--text-col",
            f"no column {text_col!r} in {p.name} (columns: {', '.join(cols[:12])})",
            "pass --text-col with one of those columns",
        )
    ids = df[item].astype(str)
    dup = ids.duplicated()
    if dup.any():
        raise ValidationError(
            "--items",
            f"{p.name} lists item {ids[dup].iloc[0]!r} twice ({int(dup.sum())} repeated id(s))",
            "keep one row per item",
        )
    texts = pd.Series(df[text_col].to_numpy(), index=ids.to_numpy())
    wanted = pd.Index([str(i) for i in table.items])
    missing = wanted.difference(texts.index)
    if len(missing):
        raise ValidationError(
            "--items",
            f"{p.name} has no row for {len(missing)} of the {len(wanted)} annotated items, "
            f"e.g. {missing[0]!r}",
            "add a row with its text for every annotated item",
        )
    got = texts.loc[wanted]
    return [str(t) for t in got.astype(object).where(got.notna(), "")]


def item_text_pred_probs(
    table: Annotations,
    texts: list[str],
    *,
    encoder: Any = None,
    cache: bool = False,
    random_state: int = 0,
) -> ItemModel:
    """Cross-fitted probabilities of a text classifier trained on the majority vote.

    ``encoder`` as in :func:`truelabel.pipeline.audit_dataset` (None = the default sentence
    encoder, TF-IDF without the ``[text]`` extra; ``"tfidf"``; a model folder).
    """
    from ._text_vectors import encode_texts
    from .data import Dataset
    from .pipeline import _text_encoder

    if len(texts) != table.n_items:
        raise ValidationError("texts", f"has {len(texts)} items", f"pass {table.n_items}")
    names = [str(c) for c in table.classes]
    vote = MajorityVote(random_state=random_state).fit(table).labels_.to_numpy()
    codes = pd.Index(table.classes).get_indexer(vote)
    frame = pd.DataFrame({"text": texts, "label": np.asarray(names, dtype=object)[codes]})
    dataset = Dataset.from_pandas(frame, label_col="label", text_col="text", classes=names)
    sentence, why = _text_encoder(encoder, cache=cache)
    _, _, probs, info = encode_texts(
        dataset, sentence, why, need_pred_probs=True, random_state=random_state
    )
    assert probs is not None  # need_pred_probs=True
    pred_probs, source = probs
    return ItemModel(pred_probs, f"{source}, trained on the majority vote", info)
