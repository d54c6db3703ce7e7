"""Supernet training: progressive shrinking, sandwich rule, in-place distillation (evaluation: ``edgenas.evaluate``)."""

from .config import Phase, TrainConfig, default_phases, load_config
from .loop import Trainer, kd_loss
from .sampling import sandwich, step_rng

__all__ = ["Phase", "TrainConfig", "Trainer", "default_phases", "kd_loss", "load_config", "sandwich", "step_rng"]
