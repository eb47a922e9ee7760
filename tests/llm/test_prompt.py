"""Chat templates: the GGUF metadata reader on a file written here, template checks."""

from __future__ import annotations

import struct

import pytest

from truelabel.exceptions import DataFormatError, ValidationError
from truelabel.llm import CHAT_TEMPLATES, read_gguf_chat_template, template_name_for
from truelabel.llm._prompt import build_messages, check_chat_template, render


def gguf_string(text: str) -> bytes:
    data = text.encode()
    return struct.pack("<Q", len(data)) + data


def write_gguf(path, kvs) -> None:
    out = b"GGUF" + struct.pack("<IQQ", 3, 0, len(kvs))
    for key, kind, payload in kvs:
        out += gguf_string(key) + struct.pack("<I", kind) + payload
    path.write_bytes(out + b"\0" * 64)


CHATML = "{% for m in messages %}<|im_start|>{{ m.role }}...{% endfor %}"


def test_reads_the_chat_template_past_scalars_and_arrays(tmp_path):
    path = tmp_path / "m.gguf"
    tokens = struct.pack("<IQ", 8, 2) + gguf_string("<s>") + gguf_string("hi")
    scores = struct.pack("<IQ", 6, 3) + struct.pack("<3f", 0.5, 1.5, 2.5)
    nested = struct.pack("<IQ", 9, 1) + struct.pack("<IQ", 4, 2) + struct.pack("<2I", 1, 2)
    write_gguf(
        path,
        [
            ("general.name", 8, gguf_string("tiny")),
            ("general.count", 4, struct.pack("<I", 7)),
            ("general.flag", 7, b"\x01"),
            ("general.big", 10, struct.pack("<Q", 9)),
            ("tokenizer.ggml.tokens", 9, tokens),
            ("tokenizer.ggml.scores", 9, scores),
            ("weird.nested", 9, nested),
            ("tokenizer.chat_template", 8, gguf_string(CHATML)),
        ],
    )
    assert read_gguf_chat_template(path) == CHATML
    assert template_name_for(CHATML) == "chatml"


def test_gguf_errors_name_the_file_and_the_fix(tmp_path):
    bad = tmp_path / "x.gguf"
    bad.write_bytes(b"NOPE" + b"\0" * 32)
    with pytest.raises(DataFormatError, match=r"x.gguf is not a GGUF file; pass a .gguf"):
        read_gguf_chat_template(bad)
    none = tmp_path / "n.gguf"
    write_gguf(none, [("general.name", 8, gguf_string("tiny"))])
    with pytest.raises(DataFormatError, match=r"n.gguf has no tokenizer.chat_template"):
        read_gguf_chat_template(none)


def test_template_families_and_unknown_ones():
    assert template_name_for("<|start_header_id|>{{ role }}") == "llama3"
    assert template_name_for("<|user|>\n{{ x }}<|end|><|assistant|>") == "phi3"
    assert template_name_for("{{ '<start_of_turn>' + role }}") == "gemma"
    with pytest.raises(ValidationError, match=r"none of \['chatml', 'gemma', 'llama3', 'phi3'"):
        template_name_for("[INST] {{ x }} [/INST]")


def test_llama3_rendering_and_custom_templates():
    msgs = build_messages("S", "t", [("e", "pos")])
    assert render(CHAT_TEMPLATES["llama3"], msgs, "Label:") == (
        "<|start_header_id|>system<|end_header_id|>\n\nS<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nText: e<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nLabel: pos<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nText: t<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nLabel:"
    )
    mine = {"system": "[{}]", "user": "U:{}|", "assistant": "A:{}|", "open": "A:"}
    assert (
        render(check_chat_template(mine), msgs, "Label:")
        == "[S]U:Text: e|A:Label: pos|U:Text: t|A:Label:"
    )
    with pytest.raises(ValidationError, match=r"template\['user'\] must be a string with one \{\}"):
        check_chat_template({**mine, "user": "U:"})
