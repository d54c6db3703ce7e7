"""CPU memory settings: huge pages asked of PyTorch at import, glibc's heap kept through an evaluation."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from edgenas.heap import _glibc


def run(code: str, **env: str) -> dict:
    base = {k: v for k, v in os.environ.items() if k != "THP_MEM_ALLOC_ENABLE"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env={**base, **env})
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("given, expected", [(None, "1"), ("0", "0")])
def test_import_asks_for_huge_pages_unless_the_user_said_otherwise(given, expected):
    env = {} if given is None else {"THP_MEM_ALLOC_ENABLE": given}
    out = run("import json, os, edgenas; print(json.dumps({'thp': os.environ.get('THP_MEM_ALLOC_ENABLE')}))", **env)
    assert out["thp"] == expected


KEPT = """
import json, resource, torch
from edgenas.heap import kept_heap
def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
def resident():
    return int(open('/proc/self/statm').read().split()[1]) * resource.getpagesize()
def churn():  # 128 MB allocated, written and freed, twice
    f = faults()
    for _ in range(2):
        x = torch.ones(32 << 20)
        del x
    return faults() - f
out = {'plain': churn()}
with kept_heap():
    churn()
    with kept_heap():
        pass
    out['kept'] = churn()  # the inner scope's exit must not end the outer one
    out['inside'] = resident()
out['after'] = resident()
print(json.dumps(out))
"""


@pytest.mark.skipif(_glibc() is None, reason="glibc's mallopt")
def test_kept_heap_reuses_freed_memory_and_gives_it_back_after():
    out = run(KEPT, THP_MEM_ALLOC_ENABLE="0")  # 4 KiB pages: every fresh 128 MB block faults 32,768 times
    assert out["plain"] > 2 * 30_000
    assert out["kept"] < 1_000
    assert out["after"] < out["inside"] - 100e6  # the kept block went back to the kernel


@pytest.mark.skipif(_glibc() is None, reason="glibc's mallopt")
def test_kept_heap_can_be_turned_off():
    out = run(KEPT, THP_MEM_ALLOC_ENABLE="0", EDGENAS_KEPT_HEAP="0")
    assert out["kept"] > 2 * 30_000
