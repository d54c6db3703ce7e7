"""Elastic supernet, its dynamic operators and the static subnets it extracts."""

from .bn import bn_statistics_kept, noise_batches, recalibrate_bn
from .network import Supernet, init_weights, read_checkpoint
from .static import MBConv, SubNet

__all__ = ["MBConv", "SubNet", "Supernet", "bn_statistics_kept", "init_weights", "noise_batches", "read_checkpoint", "recalibrate_bn"]
