"""Progress lines outside a terminal: counts, rate, ETA, at most one line per interval."""

from __future__ import annotations

import io

from panollava.progress import ProgressReporter, format_duration


def test_log_lines_carry_counts_rate_and_eta() -> None:
    stream = io.StringIO()  # not a TTY: plain lines
    progress = ProgressReporter("eval test", total=4, unit="pairs", every_s=0, stream=stream)
    for done in range(1, 5):
        progress.update(done, loss=1.5)
    progress.close()
    lines = stream.getvalue().splitlines()
    assert len(lines) == 4  # one per update at every_s=0; close adds none after the last
    assert lines[0].startswith("eval test: 1/4 pairs (25.0%), ")
    assert all("ETA " in line and "pairs/s" in line and "loss=1.5" in line for line in lines)
    assert lines[-1].startswith("eval test: 4/4 pairs (100.0%)") and "ETA 0s" in lines[-1]


def test_lines_are_rate_limited_and_a_resumed_start_is_not_counted_in_the_rate() -> None:
    stream = io.StringIO()
    progress = ProgressReporter(
        "train", total=100, unit="steps", start=40, every_s=3600, stream=stream
    )
    for done in range(41, 60):
        progress.update(done)
    assert len(stream.getvalue().splitlines()) == 1  # the first update only
    progress.close()  # unfinished: the last state is printed
    last = stream.getvalue().splitlines()[-1]
    assert last.startswith("train: 59/100 steps (59.0%)")


def test_terminal_mode_draws_a_bar() -> None:
    stream = io.StringIO()
    progress = ProgressReporter("x", total=3, unit="steps", stream=stream, tty=True)
    progress.update(3)
    progress.close()
    assert "3/3" in stream.getvalue()


def test_format_duration() -> None:
    assert [format_duration(s) for s in (0, 59.6, 95, 3725)] == ["0s", "1m00s", "1m35s", "1h02m05s"]
