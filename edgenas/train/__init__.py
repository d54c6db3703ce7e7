"""Supernet training (progressive shrinking, sandwich rule, in-place distillation) and evaluation."""

from .config import Phase, TrainConfig, default_phases, load_config
from .evaluate import Evaluator
from .loop import Trainer, kd_loss
from .sampling import sandwich, step_rng

__all__ = ["Evaluator", "Phase", "TrainConfig", "Trainer", "default_phases", "kd_loss", "load_config", "sandwich", "step_rng"]
