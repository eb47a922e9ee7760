"""Class specifications for text classifiers: names, optional descriptions, class files.

A class spec is a list of names (``["billing", "refund"]``), a ``{name: description}``
dict, or the path of a file holding either:

- ``classes.txt``: one name per line (blank lines and lines starting with ``#`` skipped);
- ``classes.yaml`` / ``.yml``: flat ``name: description`` lines, or ``- name`` items;
- ``classes.json``: an object ``{"name": "description", ...}`` or a list of names.

Names are compared after ``strip()`` and ``casefold()``: ``"Refund"`` and ``" refund"``
are the same class, and a second occurrence is refused with the line it is on.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from ..exceptions import DataFormatError, ValidationError

__all__ = ["ClassSpec", "check_classes", "class_prompts", "read_classes"]


class ClassSpec:
    """Validated class names (in the user's order) and their descriptions (None if unset)."""

    def __init__(self, names: list[str], descriptions: list[str | None]) -> None:
        self.names = names
        self.descriptions = descriptions

    def __len__(self) -> int:
        return len(self.names)


def _check_name(name: Any, where: str) -> str:
    if not isinstance(name, str):
        raise ValidationError(
            "classes", f"{where} is {type(name).__name__} {name!r}, not a string", "name it"
        )
    if not name.strip():
        raise ValidationError("classes", f"{where} is an empty name", "give every class a name")
    return name.strip()


def _check_unique(names: Sequence[str], where: Sequence[str]) -> None:
    seen: dict[str, int] = {}
    for i, name in enumerate(names):
        key = name.strip().casefold()
        if key in seen:
            j = seen[key]
            raise ValidationError(
                "classes",
                f"duplicate class {name!r} at {where[i]} (same as {names[j]!r} at {where[j]}; "
                "names are compared after strip and case-fold)",
                "list each class once",
            )
        seen[key] = i


def _yaml_scalar(text: str) -> str:
    """A flat YAML scalar: quoted (``'...'`` or ``"..."``, a ``#`` inside is text and what
    follows the closing quote is a comment) or plain up to the first `` #`` comment."""
    text = text.strip()
    if text[:1] in ("'", '"'):
        end = text.find(text[0], 1)
        if end > 0:
            return text[1:end]
    return text.split(" #")[0].strip()


_YAML_KEY = re.compile(r"""^(?:"([^"]*)"|'([^']*)'|([^:#][^:]*?))\s*:(?:\s+(.*))?$""")


def _read_yaml(lines: list[str], path: Path) -> tuple[list[str], list[str | None], list[str]]:
    """Flat YAML: ``name: description`` or ``- name`` lines (comments and blanks skipped)."""
    names: list[str] = []
    descriptions: list[str | None] = []
    where: list[str] = []
    for number, raw in enumerate(lines, start=1):
        line = raw.rstrip()
        if not line.strip() or line.lstrip().startswith("#") or line.strip() in ("---", "..."):
            continue
        if line[0].isspace():
            raise DataFormatError(
                "classes",
                f"{path.name} line {number} is indented ({raw.strip()!r}); only flat "
                "'name: description' or '- name' lines are read",
                "write one class per line without nesting",
            )
        if line.startswith("- "):
            names.append(_yaml_scalar(line[2:]))
            descriptions.append(None)
        else:
            match = _YAML_KEY.match(line)
            if match is None:
                raise DataFormatError(
                    "classes",
                    f"{path.name} line {number} ({line!r}) is not 'name: description' or '- name'",
                    "write one class per line",
                )
            key = next(g for g in match.groups()[:3] if g is not None)
            value = match.group(4)
            names.append(key)
            desc = _yaml_scalar(value) if value else ""
            descriptions.append(desc or None)
        where.append(f"{path.name} line {number}")
    return names, descriptions, where


def _read_json(text: str, path: Path) -> tuple[list[str], list[str | None], list[str]]:
    pairs: list[tuple[Any, Any]] = []

    def keep_pairs(items: list[tuple[Any, Any]]) -> dict[Any, Any]:
        pairs.extend(items)
        return dict(items)

    try:
        data = json.loads(text, object_pairs_hook=keep_pairs)
    except json.JSONDecodeError as exc:
        raise DataFormatError(
            "classes", f"{path.name} is not valid JSON ({exc})", "fix the file"
        ) from exc
    lines = text.splitlines()

    def line_of(name: Any, nth: int) -> str:
        hits = [i + 1 for i, ln in enumerate(lines) if json.dumps(name) in ln]
        return f"{path.name} line {hits[nth]}" if nth < len(hits) else path.name

    if isinstance(data, list):
        names = list(data)
        descriptions: list[str | None] = [None] * len(names)
    elif isinstance(data, dict):
        names = [k for k, _ in pairs]
        descriptions = [v if isinstance(v, str) and v.strip() else None for _, v in pairs]
    else:
        raise DataFormatError(
            "classes",
            f"{path.name} holds a JSON {type(data).__name__}",
            'write an object {"name": "description"} or a list of names',
        )
    counts: dict[Any, int] = {}
    where = []
    for name in names:
        where.append(line_of(name, counts.get(name, 0)))
        counts[name] = counts.get(name, 0) + 1
    return names, descriptions, where


def read_classes(path: str | os.PathLike[str]) -> list[str] | dict[str, str]:
    """Read a class file: ``.txt`` (one name per line), ``.yaml``/``.yml`` or ``.json``.

    Parameters
    ----------
    path : path-like
        The file. ``.txt``: one class name per line. ``.yaml``: ``name: description``
        lines (or ``- name`` items). ``.json``: ``{"name": "description"}`` or ``["name"]``.

    Returns
    -------
    list of str or dict of str to str
        Names in file order; a dict when the file gives descriptions.

    Raises
    ------
    ValidationError
        On a duplicate name (also after strip/case-fold; the message gives both lines),
        an empty name, fewer than two classes, or an unreadable file.
    """
    spec = _read_spec(Path(path))
    if all(d is None for d in spec.descriptions):
        return list(spec.names)
    return {n: d or "" for n, d in zip(spec.names, spec.descriptions, strict=True)}


def _read_spec(path: Path) -> ClassSpec:
    if not path.is_file():
        raise ValidationError(
            "classes", f"no file {str(path)!r}", "pass a list of names, a dict or a class file"
        )
    text = path.read_text(encoding="utf-8-sig")
    suffix = path.suffix.lower()
    if suffix in (".yaml", ".yml"):
        names, descriptions, where = _read_yaml(text.splitlines(), path)
    elif suffix == ".json":
        names, descriptions, where = _read_json(text, path)
    elif suffix in (".txt", ""):
        names, descriptions, where = [], [], []
        for number, raw in enumerate(text.splitlines(), start=1):
            if raw.strip() and not raw.lstrip().startswith("#"):
                names.append(raw)
                descriptions.append(None)
                where.append(f"{path.name} line {number}")
    else:
        raise DataFormatError(
            "classes",
            f"{path.name} has suffix {suffix!r}",
            "use classes.txt, classes.yaml or classes.json",
        )
    return _finish(names, descriptions, where)


def _finish(names: list[Any], descriptions: list[Any], where: list[str]) -> ClassSpec:
    clean = [_check_name(n, w) for n, w in zip(names, where, strict=True)]
    _check_unique(clean, where)
    if len(clean) < 2:
        raise ValidationError(
            "classes", f"got {len(clean)} class(es) {clean}", "a classifier needs at least 2"
        )
    descs: list[str | None] = []
    for d, w in zip(descriptions, where, strict=True):
        if d is not None and not isinstance(d, str):
            raise ValidationError(
                "classes",
                f"the description at {w} is {type(d).__name__}, not text",
                "use strings",
            )
        descs.append(d.strip() if d is not None and d.strip() else None)
    return ClassSpec(clean, descs)


def check_classes(classes: Any) -> ClassSpec:
    """A :class:`ClassSpec` from a list of names, a ``{name: description}`` dict or a file."""
    if isinstance(classes, str | os.PathLike):
        return _read_spec(Path(classes))
    if isinstance(classes, Mapping):
        names = list(classes.keys())
        return _finish(names, list(classes.values()), [f"key {i}" for i in range(len(names))])
    if isinstance(classes, Sequence) or hasattr(classes, "tolist"):
        names = list(classes.tolist() if hasattr(classes, "tolist") else classes)
        return _finish(names, [None] * len(names), [f"position {i}" for i in range(len(names))])
    raise ValidationError(
        "classes",
        f"got {type(classes).__name__}",
        "pass a list of class names, a {name: description} dict or a classes.txt/.yaml/.json path",
    )


def check_template(template: Any) -> str:
    if not isinstance(template, str) or template.count("{}") != 1:
        raise ValidationError(
            "template",
            f"got {template!r}",
            "pass a string with exactly one '{}' where the class text goes, "
            "e.g. 'a question about {}'",
        )
    return template


def class_prompts(spec: ClassSpec, template: str = "{}") -> list[str]:
    """The text embedded for each class: the description if given, else the name with
    ``_``/``-`` read as spaces, put into ``template``."""
    texts = [
        d if d is not None else re.sub(r"[_\-]+", " ", n).strip()
        for n, d in zip(spec.names, spec.descriptions, strict=True)
    ]
    return [template.replace("{}", t) for t in texts]
