"""Where bench/server.py's server spends its time: py-spy samples of its worker.

``Recording`` runs ``py-spy record`` (the ``bench`` extra) on the worker
process for a phase; ``parts`` sorts its samples into the parts of the work
named in ``PARTS``: each sample goes to the first part one of whose frames
is on its stack. A sample is a thread seen running Python code, or waiting
in a call that py-spy does not count as idle (a socket write, a SQLite
query, the GIL), so the shares say where the threads are, not CPU alone.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

# Each part and what marks a sample as its own: any one of the alternatives,
# an alternative being frames ("function (path", as py-spy names them) that
# must all be on the stack.
HOME = "home (web/views.py"
PARTS: list[tuple[str, list[tuple[str, ...]]]] = [
    (
        "session and account (Django's auth, SQLite)",
        [("get_user (django/contrib/auth/middleware",)],
    ),
    ("home page: the timeline (feed, posts from the catalog)", [("FeedQueries.home_timeline (",)]),
    (
        "home page: the sidebar's data (trending, who to follow, the viewer's follows)",
        [("sidebar (web/selectors.py",)],
    ),
    ("home page: templates", [(HOME, "render (django/shortcuts.py")]),
    ("home page: the rest of the view", [(HOME,)]),
    ("the trivial view", [("trivial (bench/server_urls.py",)]),
    ("profile and tag pages", [("profile (web/views.py",), ("tag (web/views.py",)]),
    (
        "posts, follows, unfollows",
        [("post_create (web/views.py",), ("follow (web/views.py",), ("unfollow (web/views.py",)],
    ),
    ("log-ins", [("login (web/limits.py",)]),
    ("following the event log (background threads)", [("LogFollower._run (",)]),
    ("Django around the views (middleware, request, response)", [("WSGIHandler.__call__ (",)]),
]
GUNICORN = "gunicorn (reading requests, writing responses, its main loop)"


def py_spy() -> str | None:
    return shutil.which("py-spy", path=str(Path(sys.executable).parent))


class Recording:
    """``py-spy record`` of one process, in py-spy's raw (collapsed) format."""

    def __init__(self, pid: int, seconds: int, output: Path) -> None:
        command = py_spy()
        if command is None:
            raise RuntimeError("no py-spy: .venv/bin/python -m pip install -e '.[dev,bench]'")
        self.output = output
        self.process = subprocess.Popen(
            [command, "record", "--pid", str(pid), "--duration", str(seconds), "--rate", "100",
             "--format", "raw", "--nonblocking", "--output", str(output)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip

    def samples(self) -> Counter[str]:
        """Samples per part, once py-spy has finished."""
        self.process.wait(timeout=120)
        return parts(self.output.read_text().splitlines())


def parts(collapsed: list[str]) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in collapsed:
        stack, _, number = line.rpartition(" ")
        if number.isdigit():
            counts[_part(stack)] += int(number)
    return counts


def _part(stack: str) -> str:
    for name, alternatives in PARTS:
        if any(all(frame in stack for frame in frames) for frames in alternatives):
            return name
    return GUNICORN
