"""Tests that kill the mutmut survivors of model/_classes.py and model/_prior_shift.py
(``tools/mutation.sh``, issue 7): exact messages with their fixes, the flat-YAML and JSON
readers' edges, and the EM's stopping rule."""

from __future__ import annotations

import re

import numpy as np
import pytest

from truelabel.exceptions import DataFormatError, ValidationError
from truelabel.model import read_classes
from truelabel.model._classes import check_classes, check_template, class_prompts


def _exact(text: str) -> str:
    return f"^{re.escape(text)}$"


# ------------------------------------------------------------------ class files


def test_yaml_document_markers_quoted_items_and_comments(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text("---\n- \"quoted name\"\n- 'single'\n# a comment\n   \nplain\n...\n")
    # "plain" has no colon: not a '- name' item nor a 'name: description' line
    with pytest.raises(
        DataFormatError,
        match=_exact(
            "classes: classes.yaml line 6 ('plain') is not 'name: description' or '- name'; "
            "write one class per line"
        ),
    ):
        read_classes(path)
    path.write_text("---\n- \"quoted name\"\n- 'single'\n- x'\n...\n")
    assert read_classes(path) == ["quoted name", "single", "x'"]
    path.write_text("\"a b\": 'first'  # c\nc: d e\n'q': \n")
    assert read_classes(path) == {"a b": "first", "c": "d e", "q": ""}


def test_yaml_indented_line_message_is_exact(tmp_path):
    path = tmp_path / "classes.yml"
    path.write_text("a: x\n  b: y\n")
    with pytest.raises(
        DataFormatError,
        match=_exact(
            "classes: classes.yml line 2 is indented ('b: y'); only flat 'name: description' "
            "or '- name' lines are read; write one class per line without nesting"
        ),
    ):
        read_classes(path)


def test_json_other_types_and_duplicates_in_a_list_name_their_lines(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text("3")
    with pytest.raises(
        DataFormatError,
        match=_exact(
            'classes: classes.json holds a JSON int; write an object {"name": "description"} '
            "or a list of names"
        ),
    ):
        read_classes(path)
    path.write_text('["a",\n "b",\n "a"]')
    with pytest.raises(
        ValidationError,
        match=_exact(
            "classes: duplicate class 'a' at classes.json line 3 (same as 'a' at classes.json "
            "line 1; names are compared after strip and case-fold); list each class once"
        ),
    ):
        read_classes(path)
    # descriptions that are not text, or blank, are no description
    path.write_text('{"a": 1, "b": " ", "c": "see"}')
    assert read_classes(path) == {"a": "", "b": "", "c": "see"}
    path.write_text("{")
    with pytest.raises(
        DataFormatError, match=r"^classes: classes.json is not valid JSON \(.*\); fix the file$"
    ):
        read_classes(path)


def test_txt_files_any_case_suffix_or_none_and_a_byte_order_mark(tmp_path):
    upper = tmp_path / "CLASSES.TXT"
    upper.write_text("\ufeffx\ny\n", encoding="utf-8")
    assert read_classes(upper) == ["x", "y"]
    bare = tmp_path / "classes"
    bare.write_text("  x  \n\n# no\ny\n")
    assert read_classes(bare) == ["x", "y"]
    spec = check_classes(bare)
    assert spec.names == ["x", "y"] and spec.descriptions == [None, None] and len(spec) == 2


def test_class_spec_messages_are_exact(tmp_path):
    missing = tmp_path / "nope.txt"
    with pytest.raises(
        ValidationError,
        match=_exact(
            f"classes: no file {str(missing)!r}; pass a list of names, a dict or a class file"
        ),
    ):
        check_classes(missing)
    (tmp_path / "c.csv").write_text("a\nb\n")
    with pytest.raises(
        DataFormatError,
        match=_exact(
            "classes: c.csv has suffix '.csv'; use classes.txt, classes.yaml or classes.json"
        ),
    ):
        check_classes(tmp_path / "c.csv")
    with pytest.raises(
        ValidationError,
        match=_exact("classes: got 1 class(es) ['a']; a classifier needs at least 2"),
    ):
        check_classes(["a"])
    with pytest.raises(
        ValidationError,
        match=_exact(
            "classes: got float; pass a list of class names, a {name: description} dict or a "
            "classes.txt/.yaml/.json path"
        ),
    ):
        check_classes(1.5)
    with pytest.raises(
        ValidationError,
        match=_exact("classes: position 1 is an empty name; give every class a name"),
    ):
        check_classes(["a", " "])
    with pytest.raises(
        ValidationError, match=_exact("classes: position 0 is NoneType None, not a string; name it")
    ):
        check_classes([None, "a"])
    with pytest.raises(
        ValidationError,
        match=_exact("classes: the description at key 1 is int, not text; use strings"),
    ):
        check_classes({"a": "x", "b": 2})
    with pytest.raises(
        ValidationError,
        match=_exact(
            "template: got 'about'; pass a string with exactly one '{}' where the class text "
            "goes, e.g. 'a question about {}'"
        ),
    ):
        check_template("about")
    assert check_template("about {}") == "about {}"


def test_arrays_and_tuples_of_names_and_prompts_of_runs_of_separators():
    assert check_classes(np.array(["b", "a"])).names == ["b", "a"]
    assert check_classes(("b", "a")).names == ["b", "a"]
    spec = check_classes({"a__b--c": None, "d": "  a description  ", "_e_": "  "})
    assert spec.descriptions == [None, "a description", None]
    assert class_prompts(spec, "t {}") == ["t a b c", "t a description", "t e"]


def test_an_empty_quoted_description_is_no_description(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text("x: \"\"\ny: ''\nz: why\n")
    assert read_classes(path) == {"x": "", "y": "", "z": "why"}


def test_a_duplicate_on_the_same_json_line_names_the_file(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text('["a", "b", "a"]')
    with pytest.raises(
        ValidationError,
        match=re.escape("duplicate class 'a' at classes.json (same as 'a' at classes.json line 1;"),
    ):
        read_classes(path)


def test_an_array_of_numbers_is_refused_with_python_types():
    with pytest.raises(
        ValidationError, match=_exact("classes: position 0 is int 1, not a string; name it")
    ):
        check_classes(np.array([1, 2]))


# ------------------------------------------------------------------ adjust_to_pool_priors


def test_prior_shift_messages_are_exact():
    import warnings

    from truelabel import TruelabelWarning
    from truelabel.model import adjust_to_pool_priors

    p = np.full((30, 3), 1 / 3)
    cases = [
        (
            {"train_priors": [0.5, 0.5]},
            "train_priors: expected shape (3,) (one prior per column of pred_probs), got shape "
            "(2,); pass the class frequencies of the set the model was trained on",
        ),
        (
            {"train_priors": [0.5, 0.4, 0.3]},
            "train_priors: sums to 1.2, not 1; pass frequencies, e.g. counts / counts.sum()",
        ),
        ({"max_iter": 0}, "max_iter: got 0; pass a positive int, e.g. 1000"),
        ({"tol": 0.0}, "tol: got 0.0; pass a small positive float, e.g. 1e-6"),
    ]
    for kwargs, msg in cases:
        args = {"train_priors": [1 / 3] * 3, **kwargs}
        with pytest.raises(ValidationError, match=_exact(msg)):
            adjust_to_pool_priors(p, **args)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = adjust_to_pool_priors(np.array([[0.9, 0.1], [0.2, 0.8]]), [0.5, 0.5], max_iter=1)
    assert [str(w.message) for w in caught] == [
        "adjust_to_pool_priors: the pool has 2 items for 2 classes (fewer than 10 per class), "
        "so the estimated priors are noisy; use a larger pool or keep the training priors",
        "adjust_to_pool_priors: EM did not converge in 1 iterations (last change of a prior "
        "0.05 > tol=1e-06); the priors may be heading to a boundary (a class vanishing from "
        "the pool) or pred_probs are over-confident; calibrate pred_probs first or raise "
        "max_iter",
    ]
    assert all(w.category is TruelabelWarning for w in caught)
    # one EM step from (0.5, 0.5): the mean of the rows
    assert res.n_iter == 1 and res.converged is False
    np.testing.assert_allclose(res.priors, [0.55, 0.45], atol=1e-12)


def test_ten_items_a_class_is_enough_by_default():
    from truelabel.model import adjust_to_pool_priors

    p = np.array([[0.7, 0.3], [0.3, 0.7]] * 10)
    res = adjust_to_pool_priors(p, [0.5, 0.5])  # 20 items, 2 classes: no warning
    assert res.converged is True and res.n_iter >= 1
    np.testing.assert_allclose(res.priors, [0.5, 0.5], atol=1e-6)
