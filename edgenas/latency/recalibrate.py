"""``edgenas latency recalibrate``: refit a table's calibration to its device as the device runs now.

A device's speed moves after its table was profiled (an OS or firmware update, a power or thermal
setting, a shared machine's neighbours, or a profile made in a noisy minute); `latency validate`
shows this as drift: the table's calibration networks now run at another speed than when profiled.
The blocks' relative costs still hold, so measuring only those networks again and refitting
``measured = a x blocks + b x Mparams + c`` on them corrects the table in place.  Each
recalibration is recorded in the table's meta, the calibration it replaced included.
"""

from __future__ import annotations

import datetime
import os
import sys
from typing import Any

import numpy as np

from ..io import check_writable, exclusive
from .backends import Backend, other_cpu, table_backend
from .profile import TableModels, measure_chunked
from .table import NETWORK_PREFIX, LatencyError, LatencyTable

__all__ = ["recalibrate", "recalibrate_table"]


def recalibrate_table(path: str | os.PathLike, *, out: str | os.PathLike | None = None, runner: str | None = None,
                      runner_timeout: float = 600.0, progress: bool = True) -> dict[str, Any]:
    """Recalibrate the table at ``path`` on its own device and write it to ``out`` (default: in place)."""
    out = check_writable(out or path)
    with exclusive(out, "latency table"):
        table = LatencyTable.load(path)
        backend = table_backend(table.meta, path, runner, runner_timeout)
        summary = recalibrate(table, backend, progress=progress)
        table.save(out)
    return {"table": str(out), **summary}


def recalibrate(table: LatencyTable, backend: Backend, progress: bool = True) -> dict[str, Any]:
    """Measure ``table``'s calibration networks on ``backend`` again and refit its calibration (in memory)."""
    meta, archs = table.meta, table.calibration_archs()
    if not archs:
        raise LatencyError("this latency table has no calibration networks (it was profiled with --calibrate 0); "
                           "profile it again with --calibrate 30")
    info = backend.info()
    other = other_cpu(meta, info)
    if other:
        raise LatencyError(f"{other}: recalibration corrects a device's drift, not a move to another device; profile this one")
    if info.get("ort_version") != meta.get("ort_version") and progress:
        print(f"edgenas: warning: the table's blocks were measured with ONNX Runtime {meta.get('ort_version')}, this device "
              f"has {info.get('ort_version')}; a new ONNX Runtime can change blocks unevenly: profile again if validation misses",
              file=sys.stderr)
    space, keys = table.space, [f"{NETWORK_PREFIX}{i}" for i in range(len(archs))]
    got = measure_chunked(backend, keys, TableModels.of(table), meta["protocol"], "calibration networks",
                          progress=progress)
    X = np.stack([space.encode(a) for a in archs])
    now = np.array([table.ms(got[k]) for k in keys])
    then = np.array([table.ms(table.entries[k]) for k in keys])
    before = table.predict_batch(X)
    previous = {k: v for k, v in (table.calibration or {}).items() if k != "points"}
    table.entries.update(got)
    fitted = table.fit_calibration(X, now)
    drift = now / then
    record = {
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "ort_version": info.get("ort_version"),
        "drift": {"what": "calibration networks measured now / before", **{f"p{q}": float(np.percentile(drift, q)) for q in (5, 50, 95)}},
        # how far the replaced calibration was off on these networks now, and the refitted one (in sample)
        "mape_previous": float(np.mean(np.abs(before / now - 1))),
        "mape_refitted": float(fitted["mape_after"]),
        "previous_calibration": previous,
    }
    meta["recalibrations"] = [*meta.get("recalibrations", []), record]
    return {**record, "n_networks": len(keys), "calibration": {k: v for k, v in fitted.items() if k != "points"}}
