"""The items/s column of the shared progress bar (off unless a unit is given)."""

from __future__ import annotations

import re

from rich.progress import Progress

from truelabel._progress import RateColumn, progress, progress_enabled


def test_rate_column_shows_items_per_second_from_the_clock():
    now = [0.0]
    bar = Progress(RateColumn("texts"), get_time=lambda: now[0], auto_refresh=False)
    task = bar.add_task("x", total=1000)
    assert str(bar.columns[0].render(bar.tasks[0])) == "-- texts/s"
    bar.start_task(task)
    for _ in range(4):
        now[0] += 0.5
        bar.advance(task, 250)  # 250 texts every half second
    assert str(bar.columns[0].render(bar.tasks[0])) == "500 texts/s"


def test_progress_prints_the_rate_only_when_a_unit_is_given(capsys):
    with progress_enabled(True):
        with progress(3, "encoding", unit="texts") as advance:
            advance(3)
        with progress(2, "plain") as advance:
            advance(2)
    out = capsys.readouterr().out.splitlines()
    assert re.search(r"encoding .* 3/3 .* (\d[\d,]*|--) texts/s$", out[0])
    assert "plain" in out[1] and "/s" not in out[1]
