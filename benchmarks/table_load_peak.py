"""Peak anonymous memory while loading an answer table: ``Annotations.from_parquet(path)``.

A thread reads ``RssAnon`` from ``/proc/self/status`` every 2 ms; prints the peak and the
memory still held after the load (after ``gc`` and ``malloc_trim``), in MB above the reading
after imports, with the truelabel frames at the peak. Run it with ``PYTHONPATH`` set to two
checkouts to compare them on the same input (e.g. ``bench_scale.py``'s ``answers.parquet``).

Usage: python benchmarks/table_load_peak.py PATH [--json F]
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
import time
import traceback
from pathlib import Path

from _common import anon_mb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("path", type=Path)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    import pyarrow.parquet  # noqa: F401  (imported before the baseline, as the load would)

    import truelabel
    from truelabel._spill import release_free_memory
    from truelabel.aggregate import Annotations

    base = anon_mb()
    peak, where, done = [base], [[""]], threading.Event()
    main_id = threading.get_ident()

    def sample() -> None:
        while not done.is_set():
            now = anon_mb()
            if now > peak[0]:
                peak[0] = now
                frame = sys._current_frames().get(main_id)
                stack = traceback.extract_stack(frame) if frame is not None else []
                where[0] = [
                    f"{Path(s.filename).name}:{s.lineno}"
                    for s in stack
                    if "truelabel" in s.filename
                ]
            time.sleep(0.002)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t0 = time.perf_counter()
    ann = Annotations.from_parquet(args.path)
    seconds = time.perf_counter() - t0
    gc.collect()
    release_free_memory()
    held = anon_mb()
    done.set()
    thread.join()
    out = {
        "truelabel": str(Path(truelabel.__file__).parent),
        "n_answers": int(ann.n_labels),
        "n_items": int(ann.n_items),
        "peak_anon_mb": round(peak[0] - base, 1),
        "held_anon_mb": round(held - base, 1),
        "seconds": round(seconds, 2),
        "at_peak": where[0][-3:],
    }
    print(json.dumps(out))
    if args.json:
        args.json.write_text(json.dumps(out, indent=1) + "\n")


if __name__ == "__main__":
    main()
