"""Malformed-input suite: how many cases, how many ended in one clear line (tests/test_fuzz.py).

    python benchmarks/fuzz.py      # ~20 s
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

from _report import machine, update_section

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_fuzz.py", "-k", "malformed or infer"],
                          cwd=ROOT, capture_output=True, text=True)
    last = proc.stdout.strip().splitlines()[-1]
    passed = int(m.group(1)) if (m := re.search(r"(\d+) passed", last)) else 0
    failed = int(m.group(1)) if (m := re.search(r"(\d+) failed", last)) else 0
    body = (f"Every command fed malformed input (bad arch JSON, NaN and huge numbers, wrong types in YAML, corrupt tables,\n"
            f"checkpoints, zips and images, space files and recorded space definitions, hostile runner replies, unwritable\n"
            f"outputs, a table naming a command to run).\n"
            f"A case is clear when it ends with exit code 2 and one `edgenas: error:` line, no traceback, nothing on stdout,\n"
            f"no run folder left and no command run.\n\n"
            f"| cases | clear | not clear |\n|---|---|---|\n| {passed + failed} | {passed} | {failed} |\n")
    update_section("Malformed input", body, "python benchmarks/fuzz.py", machine())
    print(body)


if __name__ == "__main__":
    main()
