"""User-facing errors: the CLI prints their message as one line and exits non-zero."""

from __future__ import annotations


class EdgeNASError(Exception):
    """Base class for errors caused by user input (not by bugs)."""


class ArchError(EdgeNASError, ValueError):
    """An architecture that does not belong to its search space."""


class SpaceError(EdgeNASError, KeyError):
    """An unknown search space name or an inconsistent space definition."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class CheckpointError(EdgeNASError):
    """A checkpoint that is missing, corrupt or made for another space."""


class ExportError(EdgeNASError):
    """An export that cannot be written or does not match PyTorch."""


class DataError(EdgeNASError):
    """Data that is missing, empty, corrupt or does not match the checkpoint's classes."""


class LatencyError(EdgeNASError):
    """A latency table that is missing, corrupt, incomplete or made for something else; a device that fails."""


class SearchError(EdgeNASError):
    """Bad search settings: unknown objective, unsatisfiable constraints, mismatched inputs."""
