"""Atomic file writes: a crash or Ctrl-C never leaves a half-written table, model or checkpoint."""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from .errors import EdgeNASError

__all__ = [
    "append_text", "atomic_path", "check_writable", "exclusive", "load_settings",
    "json_text", "read_json", "read_yaml", "remove_stale_tmp", "run_directory", "write_json",
]


def check_writable(path: str | os.PathLike) -> Path:
    """Fail early, with the path in the message, if ``path`` cannot be created."""
    path = _output(path)
    os.unlink(_temporary(path))  # a real probe: /proc, read-only mounts and full disks pass the checks of _output
    return path


def _output(path: str | os.PathLike) -> Path:
    path = Path(path)
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise EdgeNASError(f"output path {path} is a directory; give a file name")
    if not parent.is_dir():
        raise EdgeNASError(f"cannot write {path}: directory {parent} does not exist")
    if not os.access(parent, os.W_OK):
        raise EdgeNASError(f"cannot write {path}: directory {parent} is not writable")
    return path


def _temporary(path: Path) -> Path:
    """An empty ``.NAME.*.tmp`` file beside ``path`` (the name a killed writer's leftovers are found by)."""
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise EdgeNASError(f"cannot write {path}: {exc.strerror or exc}") from None
    os.close(fd)
    return Path(tmp)


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; it replaces ``path`` only if the block succeeds."""
    path = _output(path)
    tmp_path = _temporary(path)  # creating it is the probe that check_writable makes
    try:
        yield tmp_path
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp's 0600 would make outputs private
        os.replace(tmp_path, path)
    finally:
        tmp_path.unlink(missing_ok=True)


def append_text(path: str | os.PathLike, text: str) -> None:
    """Append and fsync: a log that grows by whole records (a kill may cut the last one; readers drop it)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())


def remove_stale_tmp(path: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.*.tmp`` files a killed writer of ``path`` (a file, or every file of a directory) left."""
    path = Path(path)
    if path.is_dir():
        pattern, folder = ".*.tmp", path
    else:
        pattern, folder = f".{path.name}.*.tmp", path.parent
    gone = [p for p in folder.glob(pattern) if p.is_file()]
    for p in gone:
        p.unlink(missing_ok=True)
    return gone


@contextmanager
def exclusive(path: str | os.PathLike, what: str) -> Iterator[None]:
    """Hold an exclusive lock on ``path`` (a run directory or an output file) for the block.

    A second writer is refused at once with one clear line instead of interleaving its files
    with ours.  The lock is the kernel's (``flock``), so a killed holder releases it; leftover
    temporary files of a killed writer are removed once the lock is ours.
    """
    path = Path(path)
    lock = path / ".lock" if path.is_dir() else path.with_name(f".{path.name}.lock")
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise EdgeNASError(f"another edgenas process is writing {what} {path}; wait for it to finish or choose another output") from None
        remove_stale_tmp(path)
        yield
    finally:
        os.close(fd)


@contextmanager
def run_directory(path: str | os.PathLike, what: str, disposable: Iterable[str] = (".lock",)) -> Iterator[Path]:
    """Create (if needed) and lock a run directory for the block.

    If the block fails with an error (not an interrupt: an interrupted run stays resumable) in a
    directory this call created, and nothing but ``disposable`` files is in it, it is removed, so
    a failed start leaves no empty run behind.
    """
    path = Path(path)
    created = not path.exists()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise EdgeNASError(f"cannot create run directory {path}: {exc.strerror or exc}") from None
    try:
        with exclusive(path, what):
            yield path
    except Exception:
        if created and all(p.name in set(disposable) for p in path.iterdir()):
            shutil.rmtree(path, ignore_errors=True)
        raise


_SCALAR = r'(?:"(?:[^"\\]|\\.)*"|-?[0-9][0-9.eE+-]*|true|false|null|-?Infinity|NaN)'
_SCALAR_LIST = re.compile(rf"\[\n\s*{_SCALAR}(?:,\n\s*{_SCALAR})*\n\s*\]")


def json_text(data: Any) -> str:
    """Indented JSON with each list of numbers or strings on one line, so an arch reads as one line a
    key and a table or front stays a few screens long.  Only whitespace between tokens changes: the
    pattern needs the newline ``json.dumps`` puts after ``[``, which no JSON string can hold."""
    text = json.dumps(data, indent=2)
    return _SCALAR_LIST.sub(lambda m: "[" + ", ".join(re.findall(_SCALAR, m.group())) + "]", text) + "\n"


def write_json(path: str | os.PathLike, data: Any) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(json_text(data))
    return Path(path)


def read_json(path: str | os.PathLike, what: str, error: type[EdgeNASError] = EdgeNASError) -> Any:
    """Parsed JSON, or one ``error`` naming ``what`` for a missing, unreadable or corrupt file."""
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise error(f"cannot read {what} {path}: {exc.strerror or exc}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise error(f"{what} {path} is corrupt or truncated ({exc})") from None


def read_yaml(path: str | os.PathLike, what: str = "config") -> dict[str, Any]:
    """A YAML mapping (``safe_load`` only), with one clear error for a missing or malformed file."""
    import yaml

    try:
        data = yaml.safe_load(Path(path).read_text()) or {}
    except OSError as exc:
        raise EdgeNASError(f"cannot read {what} {path}: {exc.strerror}") from None
    except UnicodeDecodeError:
        raise EdgeNASError(f"{what} {path} is not a text file") from None
    except yaml.YAMLError as exc:
        raise EdgeNASError(f"{what} {path} is not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise EdgeNASError(f"{what} {path} must be a YAML mapping")
    return data


def load_settings(fields: Iterable[str], path: str | os.PathLike | None, overrides: dict[str, Any], what: str,
                  ignore: Iterable[str] = (), recorded_space: Callable[[dict[str, Any]], dict[str, Any]] | None = None) -> dict[str, Any]:
    """Settings for a job: a YAML file (optional; keys in ``ignore`` dropped) with flags over it
    (``None`` = not given); unknown keys and a missing ``space`` get one clear error.  ``recorded_space(settings)``:
    the space settings (``space``, and ``space_def`` for one not built in) that a file they name records, or {}."""
    data = read_yaml(path, what) if path else {}
    data = {k: v for k, v in data.items() if k not in set(ignore)}
    data.update({k: v for k, v in overrides.items() if v is not None})
    known = set(fields)
    unknown = sorted(set(data) - known)
    if unknown:
        raise EdgeNASError(f"unknown {what} key(s) {unknown}; known: {sorted(known)}")
    if "space" not in data and recorded_space is not None:
        data.update(recorded_space(data))
    if "space" not in data:
        raise EdgeNASError(f"no space given (--space or 'space:' in the {what})")
    return data
