"""Where models are timed: ONNX Runtime in this process, or a device reached by a command."""

from __future__ import annotations

import base64
import json
import shlex
import subprocess
from typing import Any, Protocol

import onnxruntime as ort

from . import agent
from .table import LatencyError

__all__ = ["Backend", "LocalBackend", "RemoteBackend", "get_backend", "provider_names"]


class Backend(Protocol):
    def info(self) -> dict[str, Any]: ...

    def measure(self, models: dict[str, bytes], protocol: dict[str, Any]) -> dict[str, dict[str, Any]]: ...


def provider_names() -> dict[str, str]:
    """Short names of the installed ORT execution providers: cpu, cuda, xnnpack, coreml, ..."""
    return {p.removesuffix("ExecutionProvider").lower(): p for p in ort.get_available_providers()}


def resolve_provider(name: str, available: dict[str, str] | None = None) -> str:
    available = provider_names() if available is None else available
    key = name.lower().removesuffix("executionprovider")
    if key not in available:
        raise LatencyError(
            f"unknown device or execution provider '{name}'; available here: {', '.join(sorted(available))}, "
            "or 'remote' with --runner"
        )
    return available[key]


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


class RemoteBackend:
    """A device reached by a command that runs ``deploy/agent.py`` there (ssh, adb shell, ...).

    Each call starts the command, writes one JSON request on its stdin and reads one JSON
    response from its stdout.
    """

    def __init__(self, runner: str, provider: str = "cpu", threads: int = 1, timeout: float = 600.0):
        if not runner or not shlex.split(runner):
            raise LatencyError("--device remote needs --runner 'COMMAND' (e.g. \"ssh pi@board python3 agent.py\")")
        self.runner, self.threads, self.timeout = runner, threads, timeout
        self.provider = "CPUExecutionProvider" if provider.lower() == "cpu" else provider
        self._info: dict[str, Any] | None = None

    def _call(self, request: dict[str, Any]) -> dict[str, Any]:
        try:
            proc = subprocess.run(shlex.split(self.runner), input=json.dumps(request), capture_output=True,
                                  text=True, timeout=self.timeout)
        except FileNotFoundError:
            raise LatencyError(f"runner command not found: {shlex.split(self.runner)[0]!r}") from None
        except subprocess.TimeoutExpired:
            raise LatencyError(f"runner '{self.runner}' did not answer within {self.timeout:.0f} s") from None
        lines = [ln for ln in proc.stdout.strip().splitlines() if ln.strip()]
        try:
            response = json.loads(lines[-1]) if lines else None
        except json.JSONDecodeError:
            response = None
        if not isinstance(response, dict) or "ok" not in response:
            detail = (proc.stderr.strip().splitlines() or proc.stdout.strip().splitlines() or ["no output"])[-1][:200]
            raise LatencyError(f"runner '{self.runner}' returned no agent response (exit {proc.returncode}): {detail}")
        if not response["ok"]:
            raise LatencyError(f"device agent failed: {response.get('error', 'unknown error')}")
        return response

    def _request(self, op: str, **extra: Any) -> dict[str, Any]:
        return self._call({"op": op, "provider": self.provider, "threads": self.threads, **extra})

    def info(self) -> dict[str, Any]:
        if self._info is None:
            self._info = {**self._request("info")["device"], "device": "remote", "runner": self.runner}
        return self._info

    def measure(self, models: dict[str, bytes], protocol: dict[str, Any]) -> dict[str, dict[str, Any]]:
        payload = [{"key": k, "onnx_b64": base64.b64encode(v).decode()} for k, v in models.items()]
        results = self._request("measure", protocol=protocol, models=payload).get("results")
        if not isinstance(results, dict) or set(results) != set(models):
            raise LatencyError(f"runner '{self.runner}' answered for other models than were sent")
        for key, stats in results.items():
            if not isinstance(stats, dict) or not isinstance(stats.get("median_ms"), (int, float)) or stats["median_ms"] < 0:
                raise LatencyError(f"runner '{self.runner}' returned a malformed measurement for {key!r}")
        return results


def get_backend(device: str, threads: int = 1, runner: str | None = None, provider: str = "cpu") -> Backend:
    if device == "remote":
        return RemoteBackend(runner or "", provider, threads)
    if runner:
        raise LatencyError("--runner only goes with --device remote")
    return LocalBackend(device, threads)
