"""Terminal helpers: aligned tables, a progress bar that degrades off a terminal."""
import io

from grader.reports.terminal import Progress, progress, table


class Tty(io.StringIO):
    def isatty(self):
        return True


def test_table_aligns_text_left_and_numbers_right():
    out = table([["alice", "20.5", "graded"], ["bob", "3", "timeout"]], ["student", "total", "status"])
    lines = out.splitlines()
    assert lines[0].split() == ["student", "total", "status"]
    assert set(lines[1].replace(" ", "")) == {"─"}
    assert lines[2].index("20.5") + 4 == lines[3].index("3") + 1  # right edges line up
    assert lines[2].startswith("alice ") and lines[3].startswith("bob ")


def test_table_handles_wide_characters_and_missing_cells():
    out = table([["李雷", 1, "y"], ["abc", 2]], ["name", "n", "z"])
    a, b = out.splitlines()[2:]
    assert a.index("1") + 2 == b.index("2")  # a CJK character takes two columns
    assert b.endswith("2")


def test_progress_off_a_terminal_prints_quarters():
    s = io.StringIO()
    assert list(progress(range(8), label="grading", stream=s)) == list(range(8))
    lines = s.getvalue().splitlines()
    assert len(lines) == 4 and lines[-1].startswith("grading ") and "8/8" in lines[-1]
    assert "\r" not in s.getvalue() and "\033" not in s.getvalue()


def test_progress_on_a_terminal_redraws_one_line_with_eta():
    s = Tty()
    with Progress(4, "grading", stream=s, min_interval=0) as p:
        for name in "abcd":
            p.update(1, name)
            if name == "a":
                assert "ETA" in s.getvalue() and "1/4" in s.getvalue()
    assert s.getvalue().count("\n") == 1 and "\r" in s.getvalue() and "4/4" in s.getvalue()


def test_progress_quiet_and_unknown_total():
    s = io.StringIO()
    list(progress(range(3), label="x", stream=s, quiet=True))
    assert s.getvalue() == ""
    s = io.StringIO()
    list(progress(iter(range(3)), label="x", stream=s))
    assert s.getvalue().strip().startswith("x 3 done")
