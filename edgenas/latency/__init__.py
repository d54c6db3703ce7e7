"""Device latency: per-block lookup tables measured with ONNX Runtime, prediction and validation."""

from .backends import LocalBackend, RemoteBackend, get_backend, provider_names
from .blocks import Block, block_key, enumerate_blocks, network_keys
from .table import LatencyError, LatencyTable

__all__ = [
    "Block", "LatencyError", "LatencyTable", "LocalBackend", "RemoteBackend", "block_key", "enumerate_blocks",
    "get_backend", "network_keys", "provider_names",
]
