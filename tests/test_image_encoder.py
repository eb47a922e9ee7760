"""OpenClipImageEncoder on a tiny randomly initialised open_clip model built here.

No CLIP weights are available offline, so every test builds a ViT of one layer (32 px
images, 8-dim embeddings), saves it as a checkpoint in ``tmp_path`` and loads it back through
the encoder. The oracles are written by hand: PIL resize + centre crop + normalisation in
NumPy, and the model's own ``encode_image`` on those pixels.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from pathlib import Path

import numpy as np
import pytest

from truelabel.exceptions import MissingDependencyError, ValidationError

try:
    from truelabel.encode._image import _import_open_clip

    open_clip, torch = _import_open_clip()
except MissingDependencyError as e:  # pragma: no cover - depends on the environment
    open_clip = torch = None
    _MISSING = str(e)

needs_open_clip = pytest.mark.skipif(
    open_clip is None,
    reason="open_clip/torch not installed (pip install torch==2.13.0 'truelabel[image]')",
)

MEAN = (0.2, 0.4, 0.6)
STD = (0.5, 0.25, 0.125)
SIZE = 32
TINY = {
    "embed_dim": 8,
    "vision_cfg": {
        "image_size": SIZE,
        "layers": 1,
        "width": 32,
        "head_width": 16,
        "patch_size": 8,
        "mlp_ratio": 2.0,
        # drops half the patches in train mode: the encoder must run the model in eval mode
        "patch_dropout": 0.5,
    },
    "text_cfg": {"context_length": 16, "vocab_size": 49408, "width": 16, "heads": 2, "layers": 1},
}


def _tiny_model(seed: int = 0):
    from open_clip.model import CLIP

    torch.manual_seed(seed)
    return CLIP(**json.loads(json.dumps(TINY))).eval()


def _save_folder(folder: Path, seed: int = 0, config: dict | None = None) -> Path:
    from safetensors.torch import save_file

    folder.mkdir(parents=True, exist_ok=True)
    cfg = {
        "model_cfg": config or TINY,
        "preprocess_cfg": {"mean": list(MEAN), "std": list(STD), "interpolation": "bicubic"},
    }
    (folder / "open_clip_config.json").write_text(json.dumps(cfg))
    state = {k: v.contiguous() for k, v in _tiny_model(seed).state_dict().items()}
    save_file(state, str(folder / "open_clip_model.safetensors"))
    return folder


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """A checkpoint folder, the same weights as one file for a registered name, images."""
    root = tmp_path_factory.mktemp("tiny_clip")
    folder = _save_folder(root / "tiny-clip")
    cfg_dir = root / "configs"
    cfg_dir.mkdir()
    (cfg_dir / "truelabel-tiny-vit.json").write_text(json.dumps(TINY))
    open_clip.add_model_config(cfg_dir / "truelabel-tiny-vit.json")
    weights = root / "tiny.pt"
    torch.save(_tiny_model(0).state_dict(), weights)
    from PIL import Image

    rng = np.random.default_rng(0)
    paths = []
    for i, (w, h, mode) in enumerate(
        [(48, 40, "RGB"), (40, 64, "RGB"), (33, 33, "L"), (70, 50, "RGB")]
    ):
        shape = (h, w, 3) if mode == "RGB" else (h, w)
        image = Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode)
        path = root / f"img{i}.png"
        image.save(path)
        paths.append(path)
    return {"folder": folder, "weights": weights, "paths": paths}


def _hand_pixels(path: Path, mean=MEAN, std=STD) -> np.ndarray:
    """open_clip's eval transform written out: shortest side to SIZE (bicubic), centre
    crop, RGB, [0, 1], (x - mean) / std."""
    from PIL import Image

    with Image.open(path) as image:
        w, h = image.size
        short, long = (w, h) if w <= h else (h, w)
        new_long = int(SIZE * long / short)
        new_w, new_h = (SIZE, new_long) if w <= h else (new_long, SIZE)
        image = image.resize((new_w, new_h), Image.Resampling.BICUBIC)
        top, left = round((new_h - SIZE) / 2.0), round((new_w - SIZE) / 2.0)
        image = image.crop((left, top, left + SIZE, top + SIZE)).convert("RGB")
    x = np.asarray(image, dtype=np.float32).transpose(2, 0, 1) / np.float32(255)
    m = np.asarray(mean, dtype=np.float32)[:, None, None]
    s = np.asarray(std, dtype=np.float32)[:, None, None]
    return (x - m) / s


def _hand_embeddings(pixels: np.ndarray, seed: int = 0) -> np.ndarray:
    model = _tiny_model(seed)
    with torch.no_grad():
        z = model.encode_image(torch.from_numpy(pixels)).numpy().astype(np.float64)
    return z / np.linalg.norm(z, axis=1, keepdims=True)


# -- loading and preprocessing ---------------------------------------------------------------
@needs_open_clip
def test_preprocess_matches_open_clip_transform_by_hand(tiny):
    from truelabel.encode import OpenClipImageEncoder

    enc = OpenClipImageEncoder(checkpoint=tiny["folder"])
    got = enc.preprocess(tiny["paths"])
    assert got.shape == (4, 3, SIZE, SIZE) and got.dtype == np.float32
    want = np.stack([_hand_pixels(p) for p in tiny["paths"]])
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)
    # the weights-file form uses open_clip's default (OpenAI) mean and std
    by_name = OpenClipImageEncoder("truelabel-tiny-vit", checkpoint=tiny["weights"])
    default = [
        _hand_pixels(p, open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD)
        for p in tiny["paths"]
    ]
    np.testing.assert_allclose(by_name.preprocess(tiny["paths"]), np.stack(default), atol=1e-5)


@needs_open_clip
@pytest.mark.parametrize("form", ["folder", "file"])
def test_encode_equals_the_model_on_hand_preprocessed_pixels(tiny, form):
    from truelabel.encode import OpenClipImageEncoder

    if form == "folder":
        enc = OpenClipImageEncoder(checkpoint=tiny["folder"], batch_size=3)
        mean, std = MEAN, STD
    else:
        enc = OpenClipImageEncoder("truelabel-tiny-vit", checkpoint=str(tiny["weights"]))
        mean, std = open_clip.OPENAI_DATASET_MEAN, open_clip.OPENAI_DATASET_STD
    z = enc.encode(tiny["paths"])
    assert z.shape == (4, 8) and z.dtype == np.float32 and enc.dim == 8
    np.testing.assert_allclose(np.linalg.norm(z, axis=1), 1.0, atol=1e-6)
    want = _hand_embeddings(np.stack([_hand_pixels(p, mean, std) for p in tiny["paths"]]))
    np.testing.assert_allclose(z, want, atol=1e-5)
    # a different seed is a different model: the checkpoint's weights were really loaded
    assert not np.allclose(z, _hand_embeddings(enc.preprocess(tiny["paths"]), seed=1), atol=1e-2)


@needs_open_clip
def test_path_pil_and_str_give_identical_vectors_and_runs_are_deterministic(tiny):
    from PIL import Image

    from truelabel.encode import Encoder, OpenClipImageEncoder

    enc = OpenClipImageEncoder(checkpoint=tiny["folder"], batch_size=2)
    assert isinstance(enc, Encoder) and enc.name == "open_clip:tiny-clip"
    paths = tiny["paths"]
    images = [Image.open(p) for p in paths]
    mixed = [str(paths[0]), images[1], paths[2], images[3]]
    a, b, c = enc.encode(paths), enc.encode(images), enc.encode(mixed)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(a, c)
    np.testing.assert_array_equal(a, enc.encode(paths))
    again = OpenClipImageEncoder(checkpoint=tiny["folder"], batch_size=4).encode(paths[::-1])
    np.testing.assert_allclose(again[::-1], a, atol=1e-6)  # other batches, other order
    assert enc.encode([]).shape == (0, 8)


@needs_open_clip
def test_batches_threads_and_inference_mode(tiny, monkeypatch):
    from truelabel.encode import OpenClipImageEncoder

    enc = OpenClipImageEncoder(checkpoint=tiny["folder"], batch_size=2, n_threads=1)
    seen = []
    original = enc._model.encode_image

    def spy(x, *args, **kwargs):
        seen.append(
            (
                len(x),
                torch.get_num_threads(),
                torch.is_inference_mode_enabled(),
                enc._model.training,
            )
        )
        return original(x, *args, **kwargs)

    monkeypatch.setattr(enc._model, "encode_image", spy)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        enc.encode(tiny["paths"] + tiny["paths"][:1])
        assert torch.get_num_threads() == 2  # restored
    finally:
        torch.set_num_threads(before)
    assert seen == [(2, 1, True, False), (2, 1, True, False), (1, 1, True, False)]
    assert OpenClipImageEncoder(checkpoint=tiny["folder"]).n_threads == len(os.sched_getaffinity(0))


@needs_open_clip
def test_progress_counts_the_images(tiny, capsys):
    from truelabel._progress import progress_enabled
    from truelabel.encode import OpenClipImageEncoder

    enc = OpenClipImageEncoder(checkpoint=tiny["folder"], batch_size=3)
    with progress_enabled(True):
        enc.encode(tiny["paths"])
    out = capsys.readouterr().out
    assert "encoding images (open_clip:tiny-clip)" in out and "4/4" in out, out


@needs_open_clip
def test_identity_is_name_plus_sha256_of_the_checkpoint(tiny, tmp_path):
    from truelabel.encode import OpenClipImageEncoder

    folder = tiny["folder"]
    digest = hashlib.sha256()
    for name in ("open_clip_config.json", "open_clip_model.safetensors"):
        digest.update(name.encode() + b"\0" + (folder / name).read_bytes())
    enc = OpenClipImageEncoder(checkpoint=folder)
    assert enc.identity == f"open_clip:tiny-clip:sha256:{digest.hexdigest()}"
    by_name = OpenClipImageEncoder("truelabel-tiny-vit", checkpoint=tiny["weights"])
    file_digest = hashlib.sha256(b"tiny.pt\0" + tiny["weights"].read_bytes()).hexdigest()
    assert by_name.identity == f"open_clip:truelabel-tiny-vit:sha256:{file_digest}"
    other = OpenClipImageEncoder(checkpoint=_save_folder(tmp_path / "tiny-clip", seed=1))
    assert other.identity != enc.identity and other.name == enc.name


@needs_open_clip
def test_encode_text_is_in_the_image_space(tiny):
    from truelabel.encode import OpenClipImageEncoder

    enc = OpenClipImageEncoder(checkpoint=tiny["folder"], batch_size=2)
    names = ["cat", "a photo of a dog", "car"]
    t = enc.encode_text(names)
    assert t.shape == (3, 8) and t.dtype == np.float32
    model = _tiny_model(0)
    tokens = open_clip.tokenize(names, context_length=16)
    with torch.no_grad():
        want = model.encode_text(tokens).numpy().astype(np.float64)
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    np.testing.assert_allclose(t, want, atol=1e-5)
    with pytest.raises(ValidationError, match=r"texts: item 1 is ''; pass non-empty strings"):
        enc.encode_text(["cat", ""])
    with pytest.raises(ValidationError, match="texts: got a single text; pass a list of texts"):
        enc.encode_text("cat")


# -- errors ----------------------------------------------------------------------------------
@needs_open_clip
def test_checkpoint_and_model_name_errors(tiny, tmp_path):
    from truelabel.encode import OpenClipImageEncoder

    with pytest.raises(
        ValidationError, match=r"checkpoint: no file or folder at '.*nope.pt'.*none are downloaded"
    ):
        OpenClipImageEncoder("ViT-B-32", checkpoint=tmp_path / "nope.pt")
    (tmp_path / "empty").mkdir()
    with pytest.raises(
        ValidationError,
        match=r"checkpoint: folder '.*empty' lacks open_clip_config.json or a weights file",
    ):
        OpenClipImageEncoder(checkpoint=tmp_path / "empty")
    with pytest.raises(
        ValidationError,
        match=r"model_name: is needed with the weights file '.*tiny.pt'.*'ViT-B-32'",
    ):
        OpenClipImageEncoder(checkpoint=tiny["weights"])
    with pytest.raises(
        ValidationError,
        match=r"model_name: 'ViT-B-23' is not an open_clip architecture; did you mean 'ViT-B-32'",
    ):
        OpenClipImageEncoder("ViT-B-23", checkpoint=tiny["weights"])
    with pytest.raises(
        ValidationError,
        match=r"model_name: 'hf-hub:org/x' is not an open_clip architecture.*nothing is downloaded",
    ):
        OpenClipImageEncoder("hf-hub:org/x", checkpoint=tiny["weights"])
    with pytest.raises(ValidationError, match="checkpoint: got int; pass the path"):
        OpenClipImageEncoder("ViT-B-32", checkpoint=3)
    with pytest.raises(ValidationError, match="model_name: got int"):
        OpenClipImageEncoder(5, checkpoint=tiny["weights"])
    with pytest.raises(ValidationError, match=r"batch_size: got 0; pass an int >= 1"):
        OpenClipImageEncoder(checkpoint=tiny["folder"], batch_size=0)
    with pytest.raises(ValidationError, match=r"n_threads: got True"):
        OpenClipImageEncoder(checkpoint=tiny["folder"], n_threads=True)
    if not torch.cuda.is_available():
        with pytest.raises(
            ValidationError, match=r"device: got 'cuda', but torch sees no CUDA device"
        ):
            OpenClipImageEncoder(checkpoint=tiny["folder"], device="cuda")
    with pytest.raises(ValidationError, match=r"device: got 'gpu0'"):
        OpenClipImageEncoder(checkpoint=tiny["folder"], device="gpu0")
    wider = json.loads(json.dumps(TINY))
    wider["vision_cfg"]["width"] = 64
    bad = _save_folder(tmp_path / "bad", config=TINY)
    (bad / "open_clip_config.json").write_text(json.dumps({"model_cfg": wider}))
    with pytest.raises(
        ValidationError,
        match=r"checkpoint: open_clip could not load '.*bad' as 'bad'.*pass the model_name",
    ):
        OpenClipImageEncoder(checkpoint=bad)


@needs_open_clip
def test_image_item_errors_name_the_item(tiny, tmp_path):
    from truelabel.encode import OpenClipImageEncoder

    enc = OpenClipImageEncoder(checkpoint=tiny["folder"])
    text = tmp_path / "notes.png"
    text.write_text("not an image")
    with pytest.raises(
        ValidationError, match=r"items: cannot read image '.*notes.png' \(item 1\).*PIL can open"
    ):
        enc.encode([tiny["paths"][0], text])
    with pytest.raises(
        ValidationError, match=r"items: cannot read image '.*missing.jpg' \(item 0\)"
    ):
        enc.encode([tmp_path / "missing.jpg"])
    with pytest.raises(ValidationError, match=r"items: item 1 is int; pass image file paths"):
        enc.encode([tiny["paths"][0], 7])
    with pytest.raises(
        ValidationError, match=r"items: got a single image path or PIL image; pass a list"
    ):
        enc.encode(str(tiny["paths"][0]))
    with pytest.raises(ValidationError, match=r"items: got int; pass a list"):
        enc.encode(3)


def test_missing_dependency_names_the_image_extra(monkeypatch):
    from truelabel.encode import OpenClipImageEncoder

    monkeypatch.setitem(sys.modules, "torch", None)
    with pytest.raises(MissingDependencyError, match=r"'torch'.*pip install 'truelabel\[image\]'"):
        OpenClipImageEncoder("ViT-B-32", checkpoint=__file__)
    if torch is None:
        return
    monkeypatch.setitem(sys.modules, "torch", torch)
    monkeypatch.setitem(sys.modules, "open_clip", None)
    with pytest.raises(MissingDependencyError, match=r"'open-clip-torch'.*truelabel\[image\]"):
        OpenClipImageEncoder("ViT-B-32", checkpoint=__file__)
