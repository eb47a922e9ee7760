"""Make ``import torchvision`` work beside a torch build its compiled ops were not built for.

torchvision's compiled ops are built for one torch build. Beside a CPU torch with a
torchvision wheel built for CUDA (``pip install torch==2.13.0 torchvision==0.28.0`` on Linux),
they fail to load and ``import torchvision`` then stops on registering a fake kernel for the
missing ``torchvision::nms`` operator. Neither open_clip (the image encoder) nor
sentence-transformers (through transformers, which imports torchvision whenever it is
installed) uses those compiled ops, only torchvision's pure-Python parts: in exactly that case
the two operator schemas torchvision needs are declared (no kernel, so calling
``torchvision.ops.nms`` still fails loudly) and the import is retried. Any other failure is
raised unchanged.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import threading
from typing import Any

__all__ = ["ensure_torchvision"]

#: keeps the declared operator schemas alive (a torch.library.Library drops them when freed)
_SCHEMAS: list[Any] = []
_LOCK = threading.Lock()


def ensure_torchvision(torch: Any) -> None:
    """Import torchvision if it is installed, declaring its missing op schemas when (and only
    when) its compiled ops do not load beside this ``torch``; nothing when it is absent."""
    with _LOCK:
        if "torchvision" in sys.modules or importlib.util.find_spec("torchvision") is None:
            return
        try:
            importlib.import_module("torchvision")
        except RuntimeError as e:
            extension = sys.modules.get("torchvision.extension")
            if "torchvision::nms" not in str(e) or extension is None or extension._has_ops():
                raise
            for module in [m for m in sys.modules if m.split(".")[0] == "torchvision"]:
                del sys.modules[module]
            if not _SCHEMAS:
                lib = torch.library.Library("torchvision", "DEF")
                for op in ("nms", "qnms"):
                    lib.define(f"{op}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
                _SCHEMAS.append(lib)
            importlib.import_module("torchvision")
