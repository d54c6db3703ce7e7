"""Progress bars: in place on a terminal, whole lines in a log."""

import io

from edgenas.progress import bar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_log_gets_whole_lines_first_and_last_only():
    log = io.StringIO()
    total = 0
    with bar(range(500), file=log, desc="epoch") as b:
        for i in b:
            total += i
            b.set_postfix(loss=i)  # waits for the next line due, as the training loop's loss does
    assert total == sum(range(500))
    lines = log.getvalue().split("\n")
    assert "\r" not in log.getvalue() and lines[-1] == ""  # newline-terminated
    assert len(lines[:-1]) == 2 and "0/500" in lines[0] and "500/500" in lines[1] and "loss=499" in lines[1]


def test_a_bar_that_a_terminal_would_erase_leaves_its_last_line_in_a_log():
    log = io.StringIO()
    with bar(total=3, file=log, leave=False) as b:
        b.update(3)
    lines = log.getvalue().split("\n")
    assert lines[-1] == "" and all(ln.strip() for ln in lines[:-1]) and "3/3" in lines[-2]


def test_a_terminal_is_redrawn_in_place_and_disable_writes_nothing():
    tty = Terminal()
    for _ in bar(range(5), file=tty, mininterval=0):
        pass
    assert "\r" in tty.getvalue() and "5/5" in tty.getvalue()
    quiet = io.StringIO()
    list(bar(range(5), file=quiet, disable=True))
    assert quiet.getvalue() == ""
