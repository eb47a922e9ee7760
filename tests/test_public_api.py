from __future__ import annotations

import subprocess
import sys

import truelabel


def test_all_matches_public_names():
    public = {n for n in dir(truelabel) if not n.startswith("_")} - {"annotations"}
    modules = {n for n in public if type(getattr(truelabel, n)).__name__ == "module"}
    assert set(truelabel.__all__) - {"__version__"} == public - modules
    for name in truelabel.__all__:
        assert hasattr(truelabel, name), name


def test_required_names_exported():
    for name in (
        "Dataset",
        "out_of_fold_pred_probs",
        "find_label_issues",
        "get_label_quality_scores",
        "find_overlapping_classes",
        "Audit",
        "LocalBackend",
        "Backend",
        "AutoLabelResult",
        "LabelModel",  # weak supervision (issue 8), lazy: imports scikit-learn
        "MajorityVote",
        "DawidSkene",
        "OneCoinDawidSkene",
        "MACE",
        "WeightedMajorityVote",
        "ModelAssistedConsensus",
        "choose_best_labels",
        "MultiLabelDawidSkene",
        "ActiveLearner",  # issue 10, lazy
        "StopEstimate",
        "margin_scores",
        "least_confidence_scores",
        "entropy_scores",
        "typicality_scores",
        "badge_select",
        "k_center_greedy",
    ):
        assert name in truelabel.__all__


def test_import_is_light():
    code = (
        "import sys, truelabel; "
        "bad = [m for m in ('torch', 'fastapi', 'ray', 'faiss', 'matplotlib', 'sklearn', "
        "'scipy.stats') if m in sys.modules]; "
        "print(','.join(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_lazy_estimators_resolve():
    assert truelabel.CertifiedAutoLabeler.__name__ == "CertifiedAutoLabeler"
    assert "SplitConformalClassifier" in dir(truelabel)


def test_find_overlapping_classes_is_the_detect_function():
    from truelabel.detect import find_overlapping_classes

    assert truelabel.find_overlapping_classes is find_overlapping_classes
    assert "find_overlapping_classes" in truelabel.detect.__all__
