"""Every warning truelabel emits is attributed to the user's line (the first frame outside the
package), through ``exceptions.warn_at_caller``: a fixed ``stacklevel`` points into truelabel
whenever the same code is reached by another path."""

from __future__ import annotations

import warnings
from pathlib import Path

import pandas as pd

import truelabel
from truelabel import Annotations
from truelabel.exceptions import TruelabelWarning


def test_no_module_but_exceptions_calls_warnings_warn_or_sets_a_stacklevel():
    root = Path(truelabel.__file__).parent
    offenders = [
        f"{p.relative_to(root)}:{n}"
        for p in sorted(root.rglob("*.py"))
        if p.name != "exceptions.py"
        for n, line in enumerate(p.read_text().splitlines(), start=1)
        if "warnings.warn(" in line or "stacklevel=" in line
    ]
    assert offenders == []


def test_a_constructor_warning_points_at_the_users_line():
    df = pd.DataFrame({"item_id": [0, 1], "annotator_id": ["a", "a"], "label": ["x", "x"]})
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        Annotations(df)  # every answer is 'x': warned
    ours = [w for w in got if issubclass(w.category, TruelabelWarning)]
    assert ours and "every answer is 'x'" in str(ours[0].message)
    assert {w.filename for w in ours} == {__file__}
