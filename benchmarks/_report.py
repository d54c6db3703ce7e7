"""Write one benchmark's section of BENCHMARKS.md (replacing its previous run), with machine and command."""

from __future__ import annotations

import datetime
import os
import platform
import re
from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parent.parent / "BENCHMARKS.md"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def per_cpu(title: str) -> str:
    """A section title for results that hold for this CPU only (int8 kernels differ by instruction set), so a run on
    another CPU writes its own section beside this one's instead of replacing it.  Cloud CPUs share a name across
    generations ("AMD EPYC" with AVX2 only, or with AVX-512 and VNNI), so the title carries the instruction sets too."""
    from edgenas.agent import cpu_features, cpu_model

    name = " ".join(re.sub(r"[(](R|TM)[)]", " ", cpu_model()).split())
    isa = instruction_sets(cpu_features())
    return f"{title}, {name}" + (f" ({isa})" if isa else "")


def instruction_sets(features: list[str]) -> str:
    """What chooses ONNX Runtime's int8 and fp32 kernels, in a few words: 'AVX2', 'AVX-512 VNNI', 'ARM dot product'."""
    have = set(features)
    width = next((name for flag, name in (("amx_int8", "AMX"), ("avx512f", "AVX-512"), ("avx2", "AVX2"), ("asimd", "ARM NEON"))
                  if flag in have), "")
    dot = "VNNI" if {"avx512_vnni", "avx_vnni"} & have else "dot product" if "asimddp" in have else ""
    return " ".join(part for part in (width, dot) if part)


def _pattern(title: str) -> re.Pattern:
    return re.compile(rf"^## {re.escape(title)}\n.*?(?=^## |\Z)", re.S | re.M)


def _write(text: str) -> None:
    tmp = BENCHMARKS.with_suffix(".md.tmp")
    tmp.write_text(text.rstrip() + "\n")
    os.replace(tmp, BENCHMARKS)


def update_section(title: str, body: str, command: str, machine_desc: str) -> None:
    date = datetime.date.today().isoformat()
    section = f"## {title}\n\nCommand: `{command}`  \nMachine: {machine_desc}  \nDate: {date}\n\n{body.strip()}\n"
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else "# Benchmarks\n\nEvery number here is written by the script named in its section.\n"
    pattern = _pattern(title)
    _write(pattern.sub(lambda _: section + "\n", text) if pattern.search(text) else text.rstrip() + "\n\n" + section)


def replace_body(title: str, body: str) -> bool:
    """Section ``title``'s body replaced, its command, machine and date kept (a part of what they measured was
    redone by other means, which the body says); False if there is no such section."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else ""
    old = _pattern(title).search(text)
    if old is None:
        return False
    head = "\n\n".join(old.group(0).split("\n\n", 2)[:2])  # the title; the Command, Machine and Date lines
    _write(text[: old.start()] + f"{head}\n\n{body.strip()}\n\n" + text[old.end():])
    return True


def keep_section(title: str, as_title: str) -> None:
    """Section ``title`` kept under ``as_title`` (a record the next :func:`update_section` of ``title``
    would replace), unless ``as_title`` exists already."""
    text = BENCHMARKS.read_text() if BENCHMARKS.exists() else ""
    old = _pattern(title).search(text)
    if old is None or _pattern(as_title).search(text):
        return
    kept = old.group(0).replace(f"## {title}\n", f"## {as_title}\n", 1)
    _write(text[: old.end()].rstrip() + "\n\n" + kept.rstrip() + "\n\n" + text[old.end():].lstrip())
