"""Prompts: the classification messages and the chat templates that turn them into text.

``/completions`` takes raw text, so the model's chat template is applied here. The
messages are a system turn (the task and the classes), optional example turns
(user ``Text: ...`` / assistant ``Label: <class>``) and the item's user turn; the prompt
ends inside the opened assistant turn with the cue ``Label:``, so the next token is the
start of a class name (with SmolLM2-135M this scored .77 on a movie-review sample against
.64 for a bare question, issue 12).
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ..exceptions import DataFormatError, ValidationError

__all__ = [
    "CHAT_TEMPLATES",
    "CONTENT_FREE",
    "build_messages",
    "check_chat_template",
    "read_gguf_chat_template",
    "render",
    "template_name_for",
    "verify_messages",
    "verify_system",
]

#: the placeholders a template fills: {system}, {user} per turn and the assistant prefix
CHAT_TEMPLATES: dict[str, dict[str, str]] = {
    # SmolLM2, Qwen2/2.5, many instruct GGUFs
    "chatml": {
        "system": "<|im_start|>system\n{}<|im_end|>\n",
        "user": "<|im_start|>user\n{}<|im_end|>\n",
        "assistant": "<|im_start|>assistant\n{}<|im_end|>\n",
        "open": "<|im_start|>assistant\n",
    },
    "llama3": {
        "system": "<|start_header_id|>system<|end_header_id|>\n\n{}<|eot_id|>",
        "user": "<|start_header_id|>user<|end_header_id|>\n\n{}<|eot_id|>",
        "assistant": "<|start_header_id|>assistant<|end_header_id|>\n\n{}<|eot_id|>",
        "open": "<|start_header_id|>assistant<|end_header_id|>\n\n",
    },
    "phi3": {
        "system": "<|system|>\n{}<|end|>\n",
        "user": "<|user|>\n{}<|end|>\n",
        "assistant": "<|assistant|>\n{}<|end|>\n",
        "open": "<|assistant|>\n",
    },
    # Gemma 2/3 (no system role: the system text opens the first user turn's block)
    "gemma": {
        "system": "<start_of_turn>user\n{}<end_of_turn>\n",
        "user": "<start_of_turn>user\n{}<end_of_turn>\n",
        "assistant": "<start_of_turn>model\n{}<end_of_turn>\n",
        "open": "<start_of_turn>model\n",
    },
    # base models and servers that apply no template: plain text turns
    "plain": {
        "system": "{}\n\n",
        "user": "{}\n",
        "assistant": "{}\n\n",
        "open": "",
    },
}

#: content-free inputs of contextual calibration (Zhao et al. 2021)
CONTENT_FREE = ("N/A", "[MASK]", "")

#: a marker in a GGUF ``tokenizer.chat_template`` -> the template family
_MARKERS = (
    ("<|im_start|>", "chatml"),
    ("<|start_header_id|>", "llama3"),
    ("<|assistant|>", "phi3"),
    ("<start_of_turn>", "gemma"),
)


def check_chat_template(template: Any) -> dict[str, str]:
    """A template name of :data:`CHAT_TEMPLATES` or a dict with the same four keys."""
    if isinstance(template, str) and template in CHAT_TEMPLATES:
        return CHAT_TEMPLATES[template]
    if isinstance(template, dict) and set(template) == {"system", "user", "assistant", "open"}:
        for key in ("system", "user", "assistant"):
            if not isinstance(template[key], str) or template[key].count("{}") != 1:
                raise ValidationError(
                    "template", f"template[{key!r}] must be a string with one {{}}", "add it"
                )
        if not isinstance(template["open"], str):
            raise ValidationError("template", "template['open'] must be a string", "fix it")
        return dict(template)
    raise ValidationError(
        "template",
        f"got {template!r}",
        f"pass one of {sorted(CHAT_TEMPLATES)} (see read_gguf_chat_template for a model "
        "file) or a dict with 'system', 'user', 'assistant' (each with one {}) and 'open'",
    )


def template_name_for(chat_template: str) -> str:
    """The family of a model's Jinja chat template text (``tokenizer.chat_template``)."""
    for marker, name in _MARKERS:
        if marker in chat_template:
            return name
    raise ValidationError(
        "template",
        f"the model's chat template matches none of {sorted(CHAT_TEMPLATES)}: "
        f"{chat_template[:120]!r}",
        "pass template={'system': ..., 'user': ..., 'assistant': ..., 'open': ...}",
    )


def read_gguf_chat_template(path: str | Path) -> str:
    """``tokenizer.chat_template`` from a GGUF file's metadata (the header only is read).

    Pass the result to :func:`template_name_for` for the ``template=`` of the classifier.
    """
    p = Path(path)
    with p.open("rb") as f:
        if f.read(4) != b"GGUF":
            raise DataFormatError("path", f"{p} is not a GGUF file", "pass a .gguf model file")
        version, _n_tensors, n_kv = struct.unpack("<IQQ", f.read(20))
        if version < 2:
            raise DataFormatError("path", f"{p} is GGUF version {version}", "use GGUF v2+")
        for _ in range(n_kv):
            key = _gguf_string(f)
            (kind,) = struct.unpack("<I", f.read(4))
            if key == "tokenizer.chat_template" and kind == 8:
                return _gguf_string(f)
            _gguf_skip(f, kind)
    raise DataFormatError(
        "path", f"{p} has no tokenizer.chat_template", "pass template= by name or as a dict"
    )


_GGUF_SIZES = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}


def _gguf_string(f: Any) -> str:
    (n,) = struct.unpack("<Q", f.read(8))
    return f.read(n).decode("utf-8", errors="replace")


def _gguf_skip(f: Any, kind: int) -> None:
    if kind == 8:
        (n,) = struct.unpack("<Q", f.read(8))
        f.seek(n, 1)
    elif kind == 9:
        sub, count = struct.unpack("<IQ", f.read(12))
        if sub in _GGUF_SIZES:
            f.seek(_GGUF_SIZES[sub] * count, 1)
        else:
            for _ in range(count):
                _gguf_skip(f, sub)
    elif kind in _GGUF_SIZES:
        f.seek(_GGUF_SIZES[kind], 1)
    else:
        raise DataFormatError("path", f"unknown GGUF value type {kind}", "is the file damaged?")


def system_text(names: Sequence[str], descriptions: Sequence[str | None]) -> str:
    """The task and the class list (with descriptions where given)."""
    lines = [f"- {n}: {d}" if d else f"- {n}" for n, d in zip(names, descriptions, strict=True)]
    return (
        "You label texts. Choose exactly one of these classes:\n"
        + "\n".join(lines)
        + "\nAnswer with the class name only."
    )


def build_messages(
    system: str, text: str, examples: Sequence[tuple[str, str]] = ()
) -> list[tuple[str, str]]:
    """``[(role, content)]``: the system turn, example turns, the item's user turn."""
    turns = [("system", system)]
    for ex_text, ex_label in examples:
        turns += [("user", f"Text: {ex_text}"), ("assistant", f"Label: {ex_label}")]
    turns.append(("user", f"Text: {text}"))
    return turns


def verify_system(names: Sequence[str], descriptions: Sequence[str | None]) -> str:
    """The yes/no verification task: the classes, then "is this label right?"."""
    lines = [f"- {n}: {d}" if d else f"- {n}" for n, d in zip(names, descriptions, strict=True)]
    return (
        "You check labels. A text was labeled with one of these classes:\n"
        + "\n".join(lines)
        + "\nAnswer yes if the label is right for the text, no if it is wrong."
    )


def verify_messages(system: str, text: str, label: str) -> list[tuple[str, str]]:
    """``[(role, content)]`` asking whether ``label`` is right for ``text``."""
    return [("system", system), ("user", f"Text: {text}\nLabel: {label}\nIs the label right?")]


def render(template: dict[str, str], messages: Sequence[tuple[str, str]], cue: str) -> str:
    """The raw prompt: every turn through ``template``, then the opened assistant turn
    and ``cue`` (e.g. ``"Label:"``)."""
    return "".join(template[role].format(content) for role, content in messages) + (
        template["open"] + cue
    )
