"""Where models are timed: ONNX Runtime in this process, or a device reached by a command."""

from __future__ import annotations

import base64
import json
import os
import shlex
import signal
import subprocess
from typing import Any, Protocol

import onnxruntime as ort

from .. import agent
from ..checks import finite
from .table import LatencyError

__all__ = ["Backend", "LocalBackend", "RemoteBackend", "get_backend", "provider_names", "table_backend"]


class Backend(Protocol):
    def info(self) -> dict[str, Any]: ...

    def measure(self, models: dict[str, bytes], protocol: dict[str, Any]) -> dict[str, dict[str, Any]]: ...


def provider_names() -> dict[str, str]:
    """Short names of the installed ORT execution providers: cpu, cuda, xnnpack, coreml, ..."""
    return {p.removesuffix("ExecutionProvider").lower(): p for p in ort.get_available_providers()}


def resolve_provider(name: str) -> str:
    try:
        return agent.resolve_provider(name)
    except ValueError:
        raise LatencyError(f"unknown device or execution provider '{name}'; available here: {', '.join(sorted(provider_names()))}, "
                           "or 'remote' with --runner") from None


class LocalBackend:
    """ONNX Runtime in this process, with the agent's protocol (same code as on a device)."""

    def __init__(self, provider: str = "cpu", threads: int = 1):
        self.provider = resolve_provider(provider)
        self.threads = threads

    def info(self) -> dict[str, Any]:
        return {**agent.device_info(self.provider, self.threads), "device": "local"}

    def measure(self, models: dict[str, bytes], protocol: dict[str, Any]) -> dict[str, dict[str, Any]]:
        try:
            return agent.measure(models, self.provider, self.threads, protocol)
        except Exception as exc:  # ORT raises its own types for graphs a provider cannot run
            detail = str(exc).strip().splitlines()[0][:200] if str(exc).strip() else type(exc).__name__
            raise LatencyError(f"{self.provider} could not run the model(s): {detail}") from None


def _printable(text: str, limit: int = 200) -> str:
    """What a device printed, safe to echo: control bytes replaced, length bounded."""
    text = "".join(c if c.isprintable() else "?" for c in text.strip())
    return text[:limit] + ("..." if len(text) > limit else "")


def _measurement(stats: Any) -> bool:
    """A plausible measurement: a mapping whose times are finite, positive numbers."""
    if not isinstance(stats, dict):
        return False
    times = [v for k, v in stats.items() if k.endswith("_ms")]
    return all(f in stats for f in agent.STATISTICS.values()) and all(finite(v) and v > 0 for v in times)


class RemoteBackend:
    """A device reached by a command that runs ``deploy/agent.py`` there (ssh, adb shell, ...).

    Each call starts the command in its own process group, writes one JSON request on its stdin
    and reads one JSON response from its stdout.  The command comes from the command line only,
    never from a file edgenas reads.  Nothing it answers is trusted: every reply is checked for
    shape and for finite, positive times; on a timeout the whole process group is killed.
    """

    def __init__(self, runner: str, provider: str = "cpu", threads: int = 1, timeout: float = 600.0):
        if not runner or not runner.strip():
            raise LatencyError("--device remote needs --runner 'COMMAND' (e.g. \"ssh pi@board python3 agent.py\")")
        try:
            self.argv = shlex.split(runner)
        except ValueError as exc:
            raise LatencyError(f"cannot parse --runner {runner!r}: {exc}") from None
        if not (isinstance(timeout, int | float) and 0 < timeout <= 86_400):
            raise LatencyError(f"runner timeout must be from 1 s to 86,400 s, got {timeout!r}")
        self.runner, self.threads, self.timeout = runner, threads, float(timeout)
        self.provider = "CPUExecutionProvider" if provider.lower() == "cpu" else provider
        self._info: dict[str, Any] | None = None

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            proc = subprocess.Popen(self.argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                    text=True, errors="replace", start_new_session=True)
        except OSError as exc:
            raise LatencyError(f"cannot start runner command {self.argv[0]!r}: {exc.strerror or exc}") from None
        try:
            stdout, stderr = proc.communicate(json.dumps(request), timeout=self.timeout)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            raise LatencyError(f"runner '{self.runner}' did not answer within {self.timeout:g} s (--runner-timeout); "
                               "it and its children were stopped") from None
        except BaseException:
            _kill_group(proc)
            raise
        lines = [ln for ln in stdout.strip().splitlines() if ln.strip()]
        try:
            response = json.loads(lines[-1]) if lines else None
        except (json.JSONDecodeError, RecursionError):
            response = None
        if not isinstance(response, dict) or not isinstance(response.get("ok"), bool):
            detail = (stderr.strip().splitlines() or stdout.strip().splitlines() or ["no output"])[-1]
            raise LatencyError(f"runner '{self.runner}' returned no agent response (exit {proc.returncode}): {_printable(detail)}")
        if not response["ok"]:
            raise LatencyError(f"device agent failed: {_printable(str(response.get('error', 'unknown error')))}")
        return response

    def _request(self, op: str, **extra: Any) -> dict[str, Any]:
        return self._call({"op": op, "provider": self.provider, "threads": self.threads, **extra})

    def info(self) -> dict[str, Any]:
        if self._info is None:
            device = self._request("info").get("device")
            if not isinstance(device, dict) or not all(isinstance(device.get(k), str) for k in ("cpu_model", "ort_version")):
                raise LatencyError(f"runner '{self.runner}' answered 'info' without a device description")
            if isinstance(device.get("provider"), str):  # the device's full name for the provider asked for (openvino: OpenVINOExecutionProvider)
                self.provider = device["provider"]
            self._info = {**device, "device": "remote", "runner": self.runner, "provider": self.provider, "threads": self.threads}
        return self._info

    def measure(self, models: dict[str, bytes], protocol: dict[str, Any]) -> dict[str, dict[str, Any]]:
        self.info()  # the provider's name as the device spells it
        payload = [{"key": k, "onnx_b64": base64.b64encode(v).decode()} for k, v in models.items()]
        results = self._request("measure", protocol=protocol, models=payload).get("results")
        if not isinstance(results, dict) or set(results) != set(models):
            raise LatencyError(f"runner '{self.runner}' answered for other models than were sent")
        for key, stats in results.items():
            if not _measurement(stats):
                raise LatencyError(f"runner '{self.runner}' returned a malformed measurement for {key!r} "
                                   "(times must be finite, positive numbers)")
        return results


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()


def get_backend(device: str, threads: int = 1, runner: str | None = None, provider: str = "cpu",
                timeout: float = 600.0) -> Backend:
    if device == "remote":
        return RemoteBackend(runner or "", provider, threads, timeout)
    if runner:
        raise LatencyError("--runner only goes with --device remote")
    return LocalBackend(device, threads)


def other_cpu(meta: dict[str, Any], info: dict[str, Any]) -> str | None:
    """Why the device ``info`` describes is not the CPU a table (``meta``) was measured on; None where it may be.

    A name is not enough: cloud CPUs share one across generations ("AMD EPYC" with AVX2 only, or with AVX-512)
    whose kernels, hence block latencies, differ.  Tables and agents from before features were recorded pass.
    """
    if info.get("cpu_model") != meta["cpu_model"]:
        return f"the table was measured on '{meta['cpu_model']}', this device is '{info.get('cpu_model')}'"
    device = meta.get("device")
    then, now = device.get("cpu_features") if isinstance(device, dict) else None, info.get("cpu_features")
    if isinstance(then, list) and isinstance(now, list) and then and now and set(then) != set(now):
        return (f"the table was measured on a '{meta['cpu_model']}' with {' '.join(then)}; this one has {' '.join(now)}: "
                "another CPU under the same name")
    return None


def table_backend(meta: dict[str, Any], where: Any, runner: str | None, timeout: float = 600.0) -> Backend:
    """The device a table was measured on, with its provider and threads (validation, recalibration).

    A remote table records the runner it was made with as text only: the command that reaches the
    device comes from ``runner`` (the command line), never from the file.
    """
    if meta["device"].get("device") != "remote":
        return get_backend(meta["provider"], meta["threads"], runner, meta["provider"], timeout)
    if not runner:
        raise LatencyError(f"{where} was measured on a remote device (runner recorded: {str(meta['device'].get('runner'))!r}); "
                           "give --runner 'COMMAND' to reach it")
    return get_backend("remote", meta["threads"], runner, meta["provider"], timeout)
