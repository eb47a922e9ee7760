"""benchmarks/bench_weak.py's LFs and majority vote on messages written for each LF (the
benchmark itself needs Snorkel in its own venv and never runs in tests)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from truelabel.weak import apply_lfs

from ._bench import load_benchmark

bw = load_benchmark("bench_weak")

# one message per LF, made up from its comment; each should fire that LF (and maybe others)
MESSAGES = {
    "prize": "you are the winner of our weekly draw, details inside the letter we posted",
    "free": "get a free entry into our weekly competition",
    "short_code": "txt WIN to 80086 now",
    "phone_number": "call 09061701461 for your reward",
    "money": "only 150p per msg, cancel anytime",
    "offer": "urgent! claim your guaranteed reward",
    "url": "visit www.example.co.uk for more",
    "handset": "latest ringtones for your mobile every week",
    "shouting": "CONGRATULATIONS YOU HAVE BEEN SELECTED FOR THIS",
    "casual": "haha ok see you",
    "personal": "i'm going home now, talk tomorrow after the meeting with Sam",
    "friend_question": "hey where are you? we started already, come quickly please",
    "short_no_digits": "on my way",
}


def test_each_lf_fires_on_its_own_message_with_its_class():
    names = [lf.name for lf in bw.LFS]
    assert sorted(names) == sorted(MESSAGES) and len(names) >= 10
    L = apply_lfs(pd.DataFrame({"text": [MESSAGES[n] for n in names]}), bw.LFS, classes=bw.CLASSES)
    spam = {
        "prize",
        "free",
        "short_code",
        "phone_number",
        "money",
        "offer",
        "url",
        "handset",
        "shouting",
    }
    for j, name in enumerate(names):
        assert L[j, j] == (1 if name in spam else 0), name


def test_majority_vote_ties_and_empty_rows_go_to_the_majority_class():
    L = np.array([[1, 1, -1], [0, 1, -1], [-1, -1, -1], [1, -1, -1], [0, 0, 1], [1, 1, 0]])
    # clear rows: 0 -> 1, 3 -> 1, 4 -> 0, 5 -> 1: class 1 wins the fallback
    assert bw.majority_vote(L, 2).tolist() == [1, 1, 1, 1, 0, 1]
