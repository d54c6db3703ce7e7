"""The archive of a search run: every evaluated arch with its objectives, one CSV row each.

Rows are appended once per generation (a long search stays linear), and read back on resume;
a row cut short by a kill is dropped (it is evaluated again, identically).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import SearchError
from ..io import append_text, atomic_path
from ..space import SearchSpace

__all__ = ["Archive"]


class Archive:
    def __init__(self, path: Path, space: SearchSpace, quantities: list[str], precisions: list[str] | None = None):
        self.path, self.space, self.quantities = path, space, quantities
        self.precisions = list(precisions or ["fp32"])  # more than one: the vector's last gene is the precision
        self.rows: list[dict[str, Any]] = []
        self._flushed = 0

    @property
    def header(self) -> list[str]:
        return ["algorithm", "index", *self.quantities, "vector", "arch"] + (["precision"] if len(self.precisions) > 1 else [])

    def record(self, label: str, X: np.ndarray, values: dict[str, np.ndarray]) -> None:
        for j, x in enumerate(X):
            self.rows.append({"algorithm": label, "index": len(self.rows), "vector": x.copy(), **{k: float(v[j]) for k, v in values.items()}})

    def of(self, label: str, seen: dict[bytes, None] | set[bytes] | None = None) -> list[dict[str, Any]]:
        """Rows of one run (``label``), optionally only those in ``seen``."""
        return [r for r in self.rows if r["algorithm"] == label and (seen is None or r["vector"].tobytes() in seen)]

    def cache(self, label: str) -> dict[bytes, dict[str, float]]:
        """What a resumed run may serve instead of evaluating again."""
        return {r["vector"].tobytes(): {q: r[q] for q in self.quantities} for r in self.of(label)}

    def flush(self) -> None:
        """Append the rows recorded since the last flush."""
        if not self.path.exists():
            with atomic_path(self.path) as tmp:
                tmp.write_text(",".join(self.header) + "\n")
        new = self.rows[self._flushed :]
        if new:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            for r in new:
                G = self.space.n_genes
                w.writerow([r["algorithm"], r["index"], *(repr(r[q]) for q in self.quantities), " ".join(map(str, r["vector"])),
                            self.space.decode(r["vector"][:G]).to_json()]
                           + ([self.precisions[int(r["vector"][G])]] if len(self.precisions) > 1 else []))
            append_text(self.path, buf.getvalue())
        self._flushed = len(self.rows)

    def load(self) -> None:
        if not self.path.exists():
            return
        text = self.path.read_text()
        if text and not text.endswith("\n"):  # a row cut by a kill
            text = text[: text.rfind("\n") + 1]
            with atomic_path(self.path) as tmp:
                tmp.write_text(text)
        rows = list(csv.DictReader(io.StringIO(text)))
        if rows and list(rows[0]) != self.header:
            raise SearchError(f"{self.path} has columns {list(rows[0])}, this run needs {self.header}; use another --out")
        try:
            for row in rows:
                x = np.array([int(v) for v in row["vector"].split()], dtype=np.int64)
                self.rows.append({"algorithm": row["algorithm"], "index": int(row["index"]), "vector": x,
                                  **{q: float(row[q]) for q in self.quantities}})
        except (TypeError, ValueError, AttributeError):
            raise SearchError(f"{self.path} has a malformed row {len(self.rows) + 1}; use another --out") from None
        self._flushed = len(self.rows)
