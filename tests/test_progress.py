"""Long jobs report progress on stderr: a redrawn bar on a terminal, lines in a log."""

import io

from api.progress import ProgressBar


def test_a_log_gets_lines_with_the_count_and_the_total_and_the_last_one_at_the_end() -> None:
    log = io.StringIO()
    bar = ProgressBar("rebuild read_models", stream=log)
    bar.update(10, 1000)
    bar.update(400, 1000)
    bar.update(1200, 1200)  # the head moved while the job ran
    lines = log.getvalue().splitlines()
    assert lines, "nothing was written"
    assert all(line.startswith("rebuild read_models") for line in lines)
    assert "\r" not in log.getvalue()
    assert "1200/1200" in lines[-1] and "100%" in lines[-1]


def test_updates_after_the_end_change_nothing() -> None:
    log = io.StringIO()
    bar = ProgressBar("export", stream=log)
    bar.update(5, 5)
    written = log.getvalue()
    bar.update(5, 5)
    assert log.getvalue() == written
