"""Progress over many recordings: a bar redrawn in place on a terminal, a line now and then in a log, nothing for
one recording."""

import io

from pipeline.common.progress import Progress


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def run(stream, total, **settings):
    progress = Progress(total, "recordings", stream=stream, **settings)
    for number in range(total):
        progress.step(f"r{number}.wav")
    return stream.getvalue()


def test_a_log_gets_a_line_every_few_seconds_and_the_last_one():
    assert run(io.StringIO(), 3, every_s=0).splitlines() == [
        "1/3 recordings (r0.wav)",
        "2/3 recordings (r1.wav)",
        "3/3 recordings (r2.wav)",
    ]
    assert run(io.StringIO(), 3, every_s=3600).splitlines() == ["3/3 recordings (r2.wav)"]  # however slow the log


def test_a_terminal_gets_one_bar_redrawn_in_place():
    shown = run(Terminal(), 4)
    assert shown.count("\r") == 4 and shown.endswith("\n") and shown.count("\n") == 1
    assert "[##########          ] 2/4 recordings: r1.wav" in shown


def test_one_recording_needs_no_progress():
    assert run(io.StringIO(), 1, every_s=0) == ""
