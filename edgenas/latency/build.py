"""Building the ONNX models a latency table times, in this process or in helper processes.

Exporting and quantizing, not timing, take most of an int8 profile: for ``cifar-mbv3`` at 32 on a 2-core
AMD EPYC, 122 of 171 s (ONNX Runtime's quantizer computed each weight channel's scale in Python; edgenas now
hands it the scales, 1.2-1.35x faster building: ``benchmarks/int8_weight_scales.py``); in fp32, 22 of 75 s.  A chunk
is built whole before it is timed, so helpers never run beside a measurement (``benchmarks/profile_build.py``).

Helpers are fresh interpreters (``python -c``) fed over pipes, not ``multiprocessing``: its ``spawn``
re-imports the caller's main script, which runs a script without a ``__main__`` guard again, and its
``fork`` can hang a process that already ran torch.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any, cast

from ..errors import EdgeNASError

__all__ = ["ModelBuilder", "build_workers"]

#: helpers start when the models left would take this process longer than this to build: starting them (a
#: fresh interpreter importing torch and ONNX Runtime, 3-5 s) is then repaid even on 2 cores, where two build
#: about 1.3x as fast as one (an fp32 profile's 22 s of building gained nothing)
WORTH_S = 60.0
#: at most this many helpers: each holds its own torch and quantizer in memory
MAX_WORKERS = 4


def build_workers() -> int:
    """Helper processes to build with: the CPUs this process may use, at most ``MAX_WORKERS``; 1 (none) where
    processes cannot share pipes (not POSIX)."""
    if os.name != "posix":
        return 1
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
    return max(1, min(cpus, MAX_WORKERS))


def _env() -> dict[str, str]:
    """This environment, with the folder of the edgenas this process runs first on the helpers' path."""
    here = str(Path(__file__).resolve().parents[2])
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [here, os.environ.get("PYTHONPATH")]))}


class _Helper:
    def __init__(self, build: Callable[[str], bytes]) -> None:
        task_r, task_w = os.pipe()
        done_r, done_w = os.pipe()
        self.proc = subprocess.Popen([sys.executable, "-c", "from edgenas.latency.build import _serve; _serve()",
                                      str(task_r), str(done_w)], pass_fds=(task_r, done_w), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, env=_env())  # stdout is --json's
        os.close(task_r)
        os.close(done_w)
        self.tasks, self.done = Connection(task_w, readable=False), Connection(done_r, writable=False)
        self.tasks.send(build)

    def close(self) -> None:
        self.tasks.close()  # the helper reads the end of its tasks and exits,
        self.done.close()  # or finds no reader for a model it was still building
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def _serve() -> None:
    """A helper's loop: the builder, then keys until the parent closes the pipe (or dies)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the parent, which closes the pipes
    tasks, done = Connection(int(sys.argv[1]), writable=False), Connection(int(sys.argv[2]), readable=False)
    import torch

    torch.set_num_threads(1)  # one core each: together they use the machine (a network's weights, recalibrated on
    # noise, then differ from this process's in float rounding: the same graph, the same speed; as the parent's thread
    # count, 2 helpers on 2 cores built no faster than one process)
    try:
        build = tasks.recv()
        done.send((True, "ready"))
        while True:
            key = tasks.recv()
            try:
                result = (True, build(key))
            except Exception as e:  # noqa: BLE001  (the parent raises it)
                result = (False, f"{type(e).__name__}: {e}")
            done.send(result)
    except (EOFError, BrokenPipeError):  # the parent closed the pipes, or is gone
        return


class ModelBuilder:
    """``builder(keys, left)``: the models of ``keys`` by key, ``left`` more to come after them.

    ``build`` must pickle (plain data with a ``__call__``, such as ``profile.TableModels``).  The first call
    builds here and times it; helpers start when the rest would take longer than ``WORTH_S``, and the call
    that starts them returns once they are ready.  Use it as a context manager, so the helpers stop with it.
    """

    def __init__(self, build: Callable[[str], bytes], workers: int | None = None) -> None:
        self.build, self.workers = build, build_workers() if workers is None else workers
        self._helpers: list[_Helper] = []
        self._timed = False

    @property
    def parallel(self) -> bool:
        return bool(self._helpers)

    def __call__(self, keys: Sequence[str], left: int = 0) -> dict[str, bytes]:
        if self._helpers:
            try:
                return self._map(keys)
            except BaseException:  # others may still be building: stop them all, and build here from now on
                self.close()
                raise
        t0 = time.perf_counter()
        out = {k: self.build(k) for k in keys}
        if keys and not self._timed:
            self._timed = True
            if self.workers > 1 and (time.perf_counter() - t0) / len(keys) * left > WORTH_S:
                self._start()
        return out

    def _start(self) -> None:
        self._helpers = [_Helper(self.build) for _ in range(self.workers)]
        for h in self._helpers:  # ready before anything is timed: their start-up would slow a measurement
            self._receive(h)

    def _receive(self, helper: _Helper) -> Any:
        try:
            ok, value = helper.done.recv()
        except EOFError:
            raise EdgeNASError(f"a helper process building models stopped (exit code {helper.proc.wait()}); "
                               "see the messages above") from None
        if not ok:
            raise EdgeNASError(f"building a model in a helper process failed: {value}")
        return value

    def _map(self, keys: Sequence[str]) -> dict[str, bytes]:
        out: dict[str, bytes] = {}
        todo, busy = list(reversed(keys)), {}  # busy: a helper's results pipe -> (helper, key)
        for h in self._helpers:
            if todo:
                key = todo.pop()
                h.tasks.send(key)
                busy[h.done] = (h, key)
        while busy:
            for conn in wait(list(busy)):
                h, key = busy.pop(cast(Connection, conn))  # wait() returns what it was given
                out[key] = self._receive(h)
                if todo:
                    nxt = todo.pop()
                    h.tasks.send(nxt)
                    busy[h.done] = (h, nxt)
        return {k: out[k] for k in keys}

    def close(self) -> None:
        for h in self._helpers:
            h.close()
        self._helpers = []

    def __enter__(self) -> ModelBuilder:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
