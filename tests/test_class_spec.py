"""Class specifications: lists, {name: description} dicts and classes.txt/.yaml/.json files."""

from __future__ import annotations

import json

import pytest

from truelabel.exceptions import DataFormatError, ValidationError
from truelabel.model import read_classes
from truelabel.model._classes import check_classes, check_template, class_prompts


def test_list_and_dict_specs_keep_order_and_descriptions():
    spec = check_classes(["card_arrival", " refund "])
    assert spec.names == ["card_arrival", "refund"]
    assert spec.descriptions == [None, None]
    assert class_prompts(spec, "about {}") == ["about card arrival", "about refund"]
    spec = check_classes({"ABBR": "abbreviation", "NUM": "", "LOC-X": None})
    assert spec.names == ["ABBR", "NUM", "LOC-X"]
    # an empty description falls back to the name, '-' and '_' read as spaces
    assert class_prompts(spec) == ["abbreviation", "NUM", "LOC X"]


def test_txt_file_one_name_per_line_skips_blanks_and_comments(tmp_path):
    path = tmp_path / "classes.txt"
    path.write_text("# intents\nrefund\n\ncard_arrival\n")
    assert read_classes(path) == ["refund", "card_arrival"]
    assert check_classes(str(path)).names == ["refund", "card_arrival"]


@pytest.mark.parametrize(
    ("text", "line", "first"),
    [
        ("refund\ncard\nRefund\n", 3, 1),
        ("refund\ncard\n  refund \n", 3, 1),
        ("# c\nspam\n\nham\nSPAM\n", 5, 2),
    ],
)
def test_txt_duplicates_after_strip_and_casefold_name_both_lines(tmp_path, text, line, first):
    path = tmp_path / "classes.txt"
    path.write_text(text)
    with pytest.raises(ValidationError, match=rf"duplicate class .* line {line} .* line {first}\b"):
        read_classes(path)


def test_yaml_file_reads_descriptions_and_catches_duplicates(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text(
        "# question types\n"
        'ABBR: "abbreviation"\n'
        "HUM: human beings  # people\n"
        "LOC:\n"
        "'NUM': numeric values\n"
    )
    assert read_classes(path) == {
        "ABBR": "abbreviation",
        "HUM": "human beings",
        "LOC": "",
        "NUM": "numeric values",
    }
    yaml = pytest.importorskip("yaml")
    # agrees with a real YAML parser on the flat subset (comments aside)
    parsed = yaml.safe_load(path.read_text())
    assert list(parsed) == ["ABBR", "HUM", "LOC", "NUM"]
    path.write_text("ABBR: abbreviation\nHUM: humans\nabbr: again\n")
    with pytest.raises(ValidationError, match=r"duplicate class 'abbr' at classes.yaml line 3"):
        read_classes(path)
    path.write_text("- spam\n- ham\n")
    assert read_classes(path) == ["spam", "ham"]
    path.write_text("spam:\n  nested: 1\n")
    with pytest.raises(DataFormatError, match="line 2 is indented"):
        read_classes(path)


def test_json_file_object_list_and_duplicate_keys(tmp_path):
    path = tmp_path / "classes.json"
    path.write_text(json.dumps({"spam": "unwanted ads", "ham": "a normal message"}, indent=1))
    assert read_classes(path) == {"spam": "unwanted ads", "ham": "a normal message"}
    path.write_text('["spam", "ham"]')
    assert read_classes(path) == ["spam", "ham"]
    path.write_text('{\n "spam": "ads",\n "ham": "normal",\n "spam": "again"\n}')
    with pytest.raises(ValidationError, match=r"duplicate class 'spam' at classes.json line 4"):
        read_classes(path)
    path.write_text("{not json")
    with pytest.raises(DataFormatError, match="not valid JSON"):
        read_classes(path)


@pytest.mark.parametrize(
    ("classes", "match"),
    [
        (["spam"], r"got 1 class\(es\).*at least 2"),
        ([], r"got 0 class"),
        (["spam", "  "], "position 1 is an empty name"),
        (["spam", 3], "position 1 is int 3, not a string"),
        ({"spam": "x", "": "y"}, "key 1 is an empty name"),
        ({"spam": 1, "ham": "y"}, "description at key 0 is int"),
        (["Spam", "ham", "spam "], r"duplicate class 'spam' at position 2 \(same as 'Spam'"),
        (42, "got int"),
    ],
)
def test_bad_specs_are_refused(classes, match):
    with pytest.raises(ValidationError, match=match):
        check_classes(classes)


def test_missing_or_unknown_files_and_bad_templates(tmp_path):
    with pytest.raises(ValidationError, match="no file"):
        check_classes(tmp_path / "nope.txt")
    (tmp_path / "c.csv").write_text("a\nb\n")
    with pytest.raises(DataFormatError, match="suffix '.csv'"):
        read_classes(tmp_path / "c.csv")
    (tmp_path / "one.txt").write_text("only\n")
    with pytest.raises(ValidationError, match="at least 2"):
        read_classes(tmp_path / "one.txt")
    for bad in ("no placeholder", "{} and {}", 3):
        with pytest.raises(ValidationError, match="template"):
            check_template(bad)


def test_yaml_quoted_hash_is_text_and_comments_after_items_are_dropped(tmp_path):
    path = tmp_path / "classes.yaml"
    path.write_text("a: \"desc # x\"  # note\nb: 'c#d' # note\ne: plain # note\n")
    want = {"a": "desc # x", "b": "c#d", "e": "plain"}
    assert read_classes(path) == want
    path.write_text("- spam  # junk mail\n- \"ham # ok\" # note\n- 'x'\n")
    assert read_classes(path) == ["spam", "ham # ok", "x"]
    yaml = pytest.importorskip("yaml")  # the same values as a real YAML parser
    assert yaml.safe_load(path.read_text()) == ["spam", "ham # ok", "x"]
