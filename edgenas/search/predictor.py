"""Accuracy from the supernet (exact, slow) or from a surrogate fitted on supernet evaluations (fast).

The surrogate file stores the evaluated archs and accuracies and the chosen model's name, and
refits (deterministically) on load: no pickled code is ever loaded.
"""

from __future__ import annotations

import os
import sys
import time
from contextlib import nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.stats import kendalltau, spearmanr

from ..io import exclusive, read_json, write_json
from ..space import SearchSpace, definition_record, get_space
from .objectives import SearchError

if TYPE_CHECKING:
    from .labels import LabelFile

__all__ = ["AccuracyPredictor", "SupernetAccuracy", "arch_features", "fit_predictor", "label_reliability", "rank_metrics",
           "sample_archs"]


def arch_features(space: SearchSpace, X: np.ndarray) -> np.ndarray:
    """One-hot per gene of canonical vectors; inactive layers' ks/e genes are all-zero."""
    X = space.canonical_vectors(np.asarray(X, dtype=np.int64).reshape(-1, space.n_genes))
    offsets = np.concatenate([[0], np.cumsum(space.n_choices)[:-1]])
    out = np.zeros((len(X), int(space.n_choices.sum())), dtype=np.float64)
    rows = np.repeat(np.arange(len(X)), space.n_genes)
    out[rows, (X + offsets).ravel()] = 1.0
    L = space.n_layers
    inactive = ~space.active_mask(X)
    for base in (0, L):  # blank the genes of inactive layers
        for slot in range(L):
            cols = offsets[base + slot] + np.arange(space.n_choices[base + slot])
            out[np.ix_(inactive[:, slot], cols)] = 0.0
    return out


def rank_metrics(pred: np.ndarray, true: np.ndarray) -> dict[str, float]:
    return {"kendall_tau": float(kendalltau(pred, true).statistic), "spearman": float(spearmanr(pred, true).statistic),
            "rmse": float(np.sqrt(np.mean((np.asarray(pred) - np.asarray(true)) ** 2))), "n": int(len(true))}


def sample_archs(space: SearchSpace, n: int, seed: int, resolutions: list[int] | None = None, stratified: bool = False) -> np.ndarray:
    """``n`` distinct random canonical arch vectors (optionally at given resolutions, drawn uniformly);
    ``stratified``: sizes spread from the smallest arch to the largest (``SearchSpace.sample_vectors``).
    Prefix-stable: a draw of ``n`` is the first ``n`` of any larger draw with the same settings, so
    ``edgenas predictor`` can add subnets to the ones it labelled before."""
    available = space.n_archs(resolutions)
    if n > available:
        raise SearchError(f"space '{space.name}' holds only {available:,} distinct archs at these resolutions; asked for {n:,}")
    rng = np.random.default_rng(seed)
    allowed = [space.resolutions.index(r) for r in resolutions] if resolutions else None
    seen: dict[bytes, np.ndarray] = {}
    for _ in range(1000):  # n <= available: a handful of rounds even when n == available
        X = space.sample_vectors(rng, 4096, stratified, allowed)  # rounds of one size whatever n: the prefix property
        for x in X:
            seen.setdefault(x.tobytes(), x)
        if len(seen) >= n:
            return np.stack(list(seen.values())[:n])
    raise SearchError(f"could not draw {n:,} distinct archs from space '{space.name}'")


class SupernetAccuracy:
    """Top-1 of each arch from the supernet after BN recalibration (edgenas eval's code path)."""

    def __init__(self, net, evaluator, progress: bool = True):
        self.net, self.evaluator, self.progress = net, evaluator, progress
        self.space = net.space

    def top1_vectors(self, X: np.ndarray) -> np.ndarray:
        return self.correct_matrix(X).mean(1)

    def correct_matrix(self, X: np.ndarray, until: float | None = None, labels: LabelFile | None = None) -> np.ndarray:
        """(archs, held-out images): whether each subnet classifies each image right.  With ``until``
        (a ``time.perf_counter()`` value) only the first archs labelled by then: fewer rows.  Archs found in
        ``labels`` are not evaluated again; new rows are added to it as they are measured."""
        from ..progress import bar

        done = 0 if labels is None else sum(labels.get(x) is not None for x in X)
        if labels is not None and done and self.progress:
            print(f"{done} of {len(X)} subnets already labelled in {labels.path}", file=sys.stderr)
        it = bar(X, desc="supernet eval", disable=not self.progress or len(X) < 8, leave=False, initial=done)
        rows = []
        try:
            for x in X:
                row = None if labels is None else labels.get(x)
                if row is None:
                    if until is not None and time.perf_counter() >= until:
                        break
                    row = self.evaluator.correct(self.net, self.space.decode(x))
                    it.update()
                    if labels is not None:
                        labels.add(x, row)
                rows.append(row)
        finally:
            it.close()
            if labels is not None:
                labels.save()
        return np.stack(rows) if rows else np.zeros((0, self.evaluator.n), dtype=bool)


def label_reliability(correct: np.ndarray) -> dict[str, float | int | None]:
    """How well top-1 measured on these images can rank these subnets at all.

    Splits the images into even and odd halves: the Kendall tau between the two halves' accuracies is
    measured directly; from their Pearson correlation (split-half reliability, stepped up to the whole
    set by Spearman-Brown) comes the correlation of the labels with the subnets' true accuracy, and,
    for normally distributed scores, ``tau_ceiling`` = 2/pi * arcsin of it: the held-out Kendall tau
    a perfect predictor would score against these labels.  A predictor near the ceiling is limited by
    the evaluation images, not by its model."""
    a, b = correct[:, 0::2].mean(1), correct[:, 1::2].mean(1)

    def number(v: float) -> float | None:
        return float(v) if np.isfinite(v) else None

    if len(a) < 3 or np.ptp(a) == 0 or np.ptp(b) == 0:
        return {"images": int(correct.shape[1]), "split_half_kendall_tau": None, "split_half_pearson": None, "tau_ceiling": None}
    r = float(np.corrcoef(a, b)[0, 1])
    whole = 2 * r / (1 + r) if r > 0 else 0.0
    return {"images": int(correct.shape[1]), "split_half_kendall_tau": number(kendalltau(a, b).statistic),
            "split_half_pearson": number(r), "tau_ceiling": number(2 / np.pi * np.arcsin(np.sqrt(whole)))}


def _candidates(seed: int) -> dict[str, Any]:
    """The surrogate models ``select`` chooses among.  The MLP learns standardized top-1: raw top-1 of a
    supernet's subnets spreads about a point, so its squared error is ~1e-5 and the weight penalty drowns it
    (the MLP then predicts nearly a constant: held-out Kendall tau 0.10 on the shipped CIFAR-10 labels, 0.83
    standardized; ``benchmarks/predictor_models.py``)."""
    from sklearn.compose import TransformedTargetRegressor
    from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
    from sklearn.linear_model import RidgeCV
    from sklearn.neural_network import MLPRegressor
    from sklearn.preprocessing import StandardScaler

    return {
        "ridge": RidgeCV(alphas=np.logspace(-3, 3, 13)),
        "gbm": GradientBoostingRegressor(n_estimators=400, max_depth=3, learning_rate=0.05, subsample=0.8, random_state=seed),
        "rf": RandomForestRegressor(n_estimators=300, min_samples_leaf=2, random_state=seed, n_jobs=1),
        "mlp": TransformedTargetRegressor(MLPRegressor(hidden_layer_sizes=(128, 64), alpha=0.1, learning_rate_init=1e-3, max_iter=3000,
                                                       random_state=seed, early_stopping=False), transformer=StandardScaler()),
    }


class AccuracyPredictor:
    """scikit-learn surrogate of top-1 over arch features, chosen by cross-validated Kendall tau."""

    def __init__(self, space: str | SearchSpace, model: str | None = None, seed: int = 0):
        self.space, self.model_name, self.seed = get_space(space), model, seed
        self.X: Any = None
        self.y: Any = None
        self.model: Any = None
        self.report: dict[str, Any] = {}

    def _fit_model(self, name: str, X: np.ndarray, y: np.ndarray):
        from sklearn.base import clone

        model = clone(_candidates(self.seed)[name])
        return model.fit(arch_features(self.space, X), y)

    def select(self, X: np.ndarray, y: np.ndarray, folds: int = 5) -> dict[str, float]:
        """Mean CV Kendall tau of each candidate; keeps the best."""
        from sklearn.model_selection import KFold

        scores = {}
        for name in _candidates(self.seed):
            taus = []
            for tr, va in KFold(folds, shuffle=True, random_state=self.seed).split(X):
                pred = self._fit_model(name, X[tr], y[tr]).predict(arch_features(self.space, X[va]))
                taus.append(kendalltau(pred, y[va]).statistic)
            scores[name] = float(np.nanmean(taus))
        self.model_name = max(scores, key=lambda k: scores[k])
        return scores

    def fit(self, X: np.ndarray, y: np.ndarray) -> AccuracyPredictor:
        X, y = np.asarray(X, dtype=np.int64), np.asarray(y, dtype=np.float64)
        if len(X) < 10:
            raise SearchError(f"an accuracy predictor needs at least 10 evaluated archs, got {len(X)}")
        if self.model_name is None:
            self.report["cv_kendall_tau"] = self.select(X, y)
        self.X, self.y = X, y
        self.model = self._fit_model(str(self.model_name), X, y)
        return self

    def top1_vectors(self, X: np.ndarray) -> np.ndarray:
        return np.clip(self.model.predict(arch_features(self.space, X)), 0.0, 1.0)

    @classmethod
    def fit_with_holdout(cls, space: SearchSpace, X: np.ndarray, y: np.ndarray, holdout: float = 0.2, seed: int = 0) -> AccuracyPredictor:
        """Select and score on a held-out part, then refit the chosen model on everything."""
        rng = np.random.default_rng(seed)
        order = rng.permutation(len(X))
        n_test = _holdout_size(len(X), holdout)
        test, train = order[:n_test], order[n_test:]
        probe = cls(space, seed=seed).fit(X[train], y[train])
        final = cls(space, probe.model_name, seed).fit(X, y)
        final.report = {"model": probe.model_name, "cv_kendall_tau": probe.report["cv_kendall_tau"],
                        "holdout": rank_metrics(probe.top1_vectors(X[test]), y[test]), "n_train": int(len(train)),
                        "n_holdout": int(n_test), "seed": seed}
        return final

    # ---- persistence -----------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        return write_json(path, {
            "format": "edgenas.accuracy-predictor", "version": 1, "space": self.space.name, "space_digest": self.space.digest(),
            **definition_record(self.space),
            "model": self.model_name, "seed": self.seed, "report": self.report,
            "X": self.X.tolist(), "y": self.y.tolist(),
        })

    @classmethod
    def load(cls, path: str | os.PathLike, space: str | SearchSpace | None = None) -> AccuracyPredictor:
        """A predictor file, or a built-in name (``cifar10``)."""
        from ..pretrained import resolve_predictor

        path = resolve_predictor(path)
        data = read_json(path, "accuracy predictor", SearchError)
        if not isinstance(data, dict) or data.get("format") != "edgenas.accuracy-predictor":
            raise SearchError(f"{path} is not an edgenas accuracy predictor")
        if not isinstance(data.get("space"), str):
            raise SearchError(f"accuracy predictor {path} does not name its space")
        recorded = get_space(data["space"], data.get("space_def"), data.get("space_digest"))
        if space is not None:
            sp = get_space(space)
            if data["space"] != sp.name or data.get("space_digest") != sp.digest():
                raise SearchError(f"accuracy predictor {path} was fitted for space '{data['space']}', not for space '{sp.name}'")
        if data.get("model") not in _candidates(0):  # a name looked up in a fixed table, never code to load
            raise SearchError(f"accuracy predictor {path} names unknown model {data.get('model')!r}; "
                              f"known: {', '.join(_candidates(0))}")
        try:
            X, y = np.asarray(data["X"], dtype=np.int64), np.asarray(data["y"], dtype=np.float64)
            seed = int(data["seed"])
            if X.ndim != 2 or X.shape[1] != recorded.n_genes or y.shape != (len(X),) or not np.isfinite(y).all():
                raise ValueError("shapes")
        except (KeyError, TypeError, ValueError, OverflowError):
            raise SearchError(f"accuracy predictor {path} is malformed (its X, y or seed)") from None
        pred = cls(recorded, data["model"], seed).fit(X, y)
        pred.report = data.get("report", {})
        return pred


def _holdout_size(n: int, holdout: float) -> int:
    return max(5, int(round(n * holdout)))


def fit_predictor(space: SearchSpace, checkpoint: str | os.PathLike, samples: int, *, data: str | None = None, holdout: float = 0.2,
                  seed: int = 0, resolutions: list[int] | None = None, stratified: bool = True, calib_images: int = 500,
                  device: str = "cpu", progress: bool = True, time_limit: float | None = None,
                  static_shapes: bool = False, labels: str | os.PathLike | None = None) -> AccuracyPredictor:
    """``edgenas predictor``: evaluate ``samples`` random subnets (``sample_archs``) with the supernet on its held-out
    split (BN recalibrated on its training split), select and score a surrogate on ``holdout``, refit on all.

    ``time_limit`` (seconds): evaluate subnets until then, at most ``samples``, and fit on those.  The draws are
    independent, so the first ``n`` are a sample of their own.  On a GPU the first evaluations cannot tell how many
    fit in a time: each new layer shape pays a set-up (the H200 pack of 2026-12-04 took 4.8 s for each of its first
    12 subnets, most of it likely set-up), and a process meets fewer new shapes the more it evaluates.

    ``stratified`` (default): subnets of every size, as the search's front spans them.  Fitted on uniform genes
    (mid-sized subnets only), the first shipped CIFAR-10 predictor put the largest subnet 2 points low and ordered
    large subnets of similar cost worst (``benchmarks/predictor_sampling.py``).

    ``static_shapes``: label in the supernet at its largest layer shapes (``Evaluator``): for a GPU, where each
    subnet's new shapes would pay that set-up.

    ``labels``: a file (``LabelFile``) the labels are kept in as they are measured and taken from when they were
    measured before with the same weights and images: an interrupted or time-limited run goes on where it stopped."""
    from ..data import checkpoint_data
    from ..evaluate import Evaluator
    from ..supernet import Supernet, read_checkpoint

    if samples - _holdout_size(samples, holdout) < 10:  # say so before evaluating anything
        need = next(n for n in range(samples, 10_000) if n - _holdout_size(n, holdout) >= 10)
        raise SearchError(f"--samples {samples} with --holdout {holdout} leaves {samples - _holdout_size(samples, holdout)} archs "
                          f"to fit on; at least 10 are needed (--samples {need} or more)")
    ckpt = read_checkpoint(checkpoint, space)
    split = checkpoint_data(ckpt.get("data"), data)
    if not split.own:
        raise SearchError(f"--data {data} is not the data the checkpoint was trained on; the predictor is fitted on its held-out split")
    evaluator = Evaluator(split, calib_images=calib_images, device=device, static_shapes=static_shapes)
    net = Supernet.from_checkpoint(ckpt)
    X = sample_archs(space, samples, seed, resolutions, stratified)
    with nullcontext() if labels is None else exclusive(labels, "predictor labels"):
        store = None
        if labels is not None:
            from .labels import LabelFile, labels_key

            store = LabelFile(labels, labels_key(net, evaluator), evaluator.n)
        acc = SupernetAccuracy(net.to(device), evaluator, progress)
        began = time.perf_counter()
        hits = acc.correct_matrix(X, None if time_limit is None else began + time_limit, store)
    if len(hits) - _holdout_size(len(hits), holdout) < 10:
        kept = "" if store is None else f"; the {len(hits)} are kept in {labels}, and a rerun goes on from them"
        raise SearchError(f"only {len(hits)} subnets were evaluated in the time limit of {time_limit:.3g} s "
                          f"({time.perf_counter() - began:.0f} s taken); too few to fit on and score: give more time{kept}")
    X, took = X[: len(hits)], time.perf_counter() - began
    reused = 0 if store is None else len(hits) - store.added
    pred = AccuracyPredictor.fit_with_holdout(space, X, hits.mean(1), holdout, seed)
    pred.report["label_seconds"] = round(took, 1)
    if reused:
        pred.report["labels_reused"] = reused
    if time_limit is not None:
        pred.report["time_limit_s"] = time_limit
    pred.report["checkpoint"] = str(checkpoint)
    pred.report["sampling"] = "stratified" if stratified else "uniform"
    pred.report["labels"] = label_reliability(hits)
    return pred
