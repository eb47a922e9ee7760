"""The pick reasons' texts at their edges (the full texts are pinned where the learner uses
them: test_active_learner.py, test_cover.py, test_noisy_relabel.py)."""

from __future__ import annotations

import numpy as np

from truelabel.active._reasons import repeat_track, show, unseen_reason


def test_a_label_is_shown_as_the_user_wrote_it():
    assert show(np.int64(3)) == "3" and show(np.str_("spam")) == "'spam'"
    assert show("spam") == "'spam'" and show(7) == "7"  # plain Python labels as they are


def test_unseen_classes_are_named_up_to_five():
    five = unseen_reason(np.array(["a", "b", "c", "d", "e"]), 9)
    assert five.startswith("coverage: 5 of the 9 classes ('a', 'b', 'c', 'd', 'e') have no")
    six = unseen_reason(np.array(["a", "b", "c", "d", "e", "f"]), 9)
    assert "('a', 'b', 'c', 'd', 'e', ...) have no label yet" in six
    assert "(3) has no label yet" in unseen_reason(np.array([3]), 9)


def test_the_repeat_yield_is_reported_once_any_disagreement_is_expected():
    assert repeat_track(0, 0.0, 1.0) == ""
    assert repeat_track(1, 0.4, 1.43) == (
        " (repeated answers so far disagreed 1 times where the model expected 0.4: its "
        "estimate scaled by 1.43)"
    )
