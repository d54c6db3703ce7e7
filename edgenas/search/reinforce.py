"""The classic NAS controller, for comparison: a factorised categorical policy over the arch genes
trained with REINFORCE on MnasNet's reward ``top1 * (cost / target) ** w``."""

from __future__ import annotations

import numpy as np

from ..space import SearchSpace

__all__ = ["ReinforceController"]


class ReinforceController:
    def __init__(self, space: SearchSpace, target: float, w: float = -0.07, lr: float = 0.1, baseline_decay: float = 0.9,
                 seed: int = 0, hard: bool = False, resolution_idx: np.ndarray | None = None):
        self.space, self.target, self.w, self.lr, self.decay, self.hard = space, target, w, lr, baseline_decay, hard
        self.rng = np.random.default_rng(seed)
        self.logits = [np.zeros(int(n)) for n in space.n_choices]
        if resolution_idx is not None:  # resolutions outside the table are never sampled
            mask = np.full(len(space.resolutions), -np.inf)
            mask[resolution_idx] = 0.0
            self.logits[-1] = mask
        self.baseline: float | None = None

    def _probs(self) -> list[np.ndarray]:
        out = []
        for z in self.logits:
            p = np.exp(z - np.max(z[np.isfinite(z)]))
            out.append(p / p.sum())
        return out

    def sample(self, n: int) -> np.ndarray:
        probs = self._probs()
        X = np.stack([self.rng.choice(len(p), size=n, p=p) for p in probs], axis=1)
        return self.space.canonical_vectors(X)

    def reward(self, top1: np.ndarray, cost: np.ndarray) -> np.ndarray:
        ratio = cost / self.target
        w = np.where(ratio <= 1, 0.0, self.w) if self.hard else self.w
        return top1 * ratio**w

    def update(self, X: np.ndarray, rewards: np.ndarray) -> None:
        mean = float(rewards.mean())
        self.baseline = mean if self.baseline is None else self.decay * self.baseline + (1 - self.decay) * mean
        adv = rewards - self.baseline
        probs = self._probs()
        for g, p in enumerate(probs):
            grad = -np.outer(adv, p)  # d log pi / d logits = onehot - p
            grad[np.arange(len(X)), X[:, g]] += adv
            finite = np.isfinite(self.logits[g])
            self.logits[g][finite] += self.lr * grad.mean(0)[finite]
