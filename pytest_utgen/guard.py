"""Guard: an audit hook that refuses, and records, what a generated test must not do.

Generated tests are untrusted code. While one runs (in the sandbox child, and in the user's session for
files carrying the utgen header) the guard refuses, with a :class:`PermissionError`, and records:

- file writes, deletes, renames, chmods, links and sqlite databases outside the allowed roots (the
  test's own temp dirs);
- new processes (``subprocess``, ``os.system``, ``os.exec*``, ``os.posix_spawn``, ``os.fork``);
- network use (``socket.connect``/``bind``/``getaddrinfo``/``sendto``...);
- signals to other processes (``os.kill``, ``os.killpg``) and loading native code with ``ctypes``.

Recording matters as much as refusing: a test that swallows the ``PermissionError`` in ``try/except``
still tried, and is failed for it. Audit hooks cannot be removed, so a process has one guard
(:func:`install`) that is switched on and off around tests. Deliberately malicious native code can get
past any audit hook; run untrusted code of that kind in a container.
"""

from __future__ import annotations

import os
import sys
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC
# Audit event -> indices of its path arguments that must stay inside the allowed roots.
_PATH_EVENTS = {
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.rename": (0, 1), "os.truncate": (0,),
    "os.chmod": (0,), "os.chown": (0,), "os.utime": (0,), "os.symlink": (1,), "os.link": (1,),
    "shutil.rmtree": (0,), "os.mkfifo": (0,), "os.mknod": (0,),
}
_PROCESS_EVENTS = {
    "subprocess.Popen": "start a process", "os.system": "run a shell command", "os.exec": "exec a program",
    "os.posix_spawn": "spawn a process", "os.spawn": "spawn a process", "os.fork": "fork",
    "os.forkpty": "fork", "pty.spawn": "spawn a process",
}
_NETWORK_EVENTS = {
    "socket.connect": "connect to", "socket.bind": "bind", "socket.getaddrinfo": "resolve",
    "socket.gethostbyname": "resolve", "socket.gethostbyaddr": "resolve", "socket.sendto": "send to",
    "socket.sendmsg": "send to",
}
_SIGNAL_EVENTS = {"os.kill": "send a signal to process", "os.killpg": "send a signal to process group",
                  "signal.pthread_kill": "send a signal to thread"}
_NATIVE_EVENTS = {"ctypes.dlopen": "load native code", "ctypes.dlsym": "look up native code"}

_guard: Guard | None = None
_install_lock = threading.Lock()


class Guard:
    """The process's one audit hook: on around a test, it refuses and records side effects outside its roots.

    ``allowed`` are the roots writes may go to while a test runs; ``outside_tests`` (or None: nothing is
    checked) the roots while no test runs, e.g. while test files are collected and the code under test
    is imported.
    """

    def __init__(self) -> None:
        self.allowed: tuple[str, ...] = ()
        self.outside_tests: tuple[str, ...] | None = None
        self.test: str | None = None
        self.events: list[str] = []
        self.on_event: Callable[[str | None, str], None] | None = None
        self._busy = threading.local()

    def configure(self, allowed: list[str], outside_tests: list[str] | None = None,
                  on_event: Callable[[str | None, str], None] | None = None) -> None:
        """Set the roots (made real paths) and the callback told of each refused event."""
        self.allowed = _real_roots(allowed)
        self.outside_tests = None if outside_tests is None else _real_roots(outside_tests)
        self.on_event = on_event

    @contextmanager
    def running(self, test: str, extra_allowed: list[str] = ()) -> Iterator[list[str]]:
        """Guard the body as test ``test``; yields the list the refused events of this test land in."""
        saved = self.allowed
        self.allowed = saved + _real_roots(extra_allowed)
        self.test, self.events = test, []
        try:
            yield self.events
        finally:
            self.test, self.allowed = None, saved

    @contextmanager
    def trusted(self) -> Iterator[None]:
        """No checks in the body, for the runner's own side effects (an alone run's fork of the child, the
        kill of a fork that outlived its limit), never a test's: no test code runs in it."""
        self._busy.on = True
        try:
            yield
        finally:
            self._busy.on = False

    def _roots(self) -> tuple[str, ...] | None:
        return self.allowed if self.test is not None else self.outside_tests

    def __call__(self, event: str, args: tuple) -> None:
        roots = self._roots()
        if roots is None or getattr(self._busy, "on", False):
            return
        self._busy.on = True  # the checks below (realpath) must not re-enter the hook
        try:
            what = self._violation(event, args, roots)
        finally:
            self._busy.on = False
        if what is not None:
            self.events.append(what)
            if self.on_event is not None:
                self.on_event(self.test, what)
            raise PermissionError(f"pytest-utgen guard: a generated test tried to {what}")

    def _violation(self, event: str, args: tuple, roots: tuple[str, ...]) -> str | None:
        if event == "open":
            path, mode, flags = args
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags, int) and flags & _WRITE_FLAGS
            )
            if writing and not _inside(path, roots):
                return f"write {_show(path)}"
        elif event in _PATH_EVENTS:
            for index in _PATH_EVENTS[event]:
                if index < len(args) and not _inside(args[index], roots):
                    return f"{event.split('.')[-1]} {_show(args[index])}"
        elif event == "sqlite3.connect":
            path = args[0] if args else None
            if path not in (None, ":memory:", b":memory:", "") and not _inside(path, roots):
                return f"open a database at {_show(path)}"
        elif event in _PROCESS_EVENTS:
            # subprocess.Popen, os.exec and os.posix_spawn carry the argv second; os.system its command first.
            command = args[1] if event in ("subprocess.Popen", "os.exec", "os.posix_spawn") else args[:1]
            return f"{_PROCESS_EVENTS[event]}: {_brief(command)}"
        elif event in _NETWORK_EVENTS:
            # socket methods get the socket first, the address second; the resolvers get the host first.
            target = args[1] if event in ("socket.connect", "socket.bind", "socket.sendto", "socket.sendmsg") \
                else args[0]
            return f"{_NETWORK_EVENTS[event]} {_brief(target)} over the network"
        elif event in _SIGNAL_EVENTS:
            return f"{_SIGNAL_EVENTS[event]} {_brief(args[0])}"
        elif event in _NATIVE_EVENTS:
            return f"{_NATIVE_EVENTS[event]}: {_brief(args[0])}"
        return None


def install() -> Guard:
    """The process's guard, its audit hook added on first use (off until configured or a test runs)."""
    global _guard
    with _install_lock:
        if _guard is None:
            _guard = Guard()
            sys.addaudithook(_guard)
    return _guard


def _real_roots(roots) -> tuple[str, ...]:
    return tuple(os.path.realpath(os.fsdecode(root)) for root in roots)


def _inside(path, roots: tuple[str, ...]) -> bool:
    if path is None or isinstance(path, int):
        return True  # an already-open file descriptor: its opening was checked
    full = os.path.realpath(os.fsdecode(path))
    return full == os.devnull or any(full == root or full.startswith(root + os.sep) for root in roots)


def _show(path) -> str:
    if isinstance(path, (str, bytes, os.PathLike)):
        return os.path.realpath(os.fsdecode(path))
    return repr(path)


def _brief(value) -> str:
    text = os.fsdecode(value) if isinstance(value, bytes) else str(value)
    return text if len(text) <= 160 else text[:157] + "..."
