"""Which subnets should an accuracy predictor learn from: uniform genes, or sizes spread over the space?

    python benchmarks/predictor_sampling.py --data imagefolder:.data/cifar10     # ~50 min on 2 cores (256 evaluations)

Uniformly random genes make mid-sized subnets (cifar-mbv3: 5-95% of MACs 41-99 M of the space's
20-180 M), but a search's Pareto front runs from the smallest subnet to the largest.  This labels
``--subnets`` uniform and as many stratified subnets (``sample_archs(..., stratified=True)``) of the
shipped CIFAR-10 supernet on its 5,000 held-out images, then reports for each sample the spread of
its labels, what the labels allow (split-half tau ceiling) and the shipped predictor's Kendall tau on
it; then how predictors trained on equal numbers of uniform, stratified or half-and-half subnets rank
held-out subnets of both samples, overall and among subnets of similar cost.  Labels are kept in
``.data/predictor_sampling.npz`` as they are measured (with the weights' digest): an interrupted run goes on where it stopped.
"""

from __future__ import annotations

import argparse
import hashlib
import os
from pathlib import Path

import numpy as np
from _report import machine, update_section
from scipy.stats import kendalltau

from edgenas.cost import cost_model
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.pretrained import resolve_checkpoint
from edgenas.progress import bar
from edgenas.search import AccuracyPredictor
from edgenas.search.predictor import label_reliability, sample_archs
from edgenas.space import get_space
from edgenas.supernet import Supernet, read_checkpoint

CACHE = Path(__file__).resolve().parent.parent / ".data" / "predictor_sampling.npz"
SAMPLES = ("uniform", "stratified")


def label(net, ev, X: np.ndarray, kind: str, cache: dict[str, np.ndarray]) -> np.ndarray:
    """The (subnets, images) correctness matrix of ``X``, resuming from and saving to the cache."""
    done = cache.get(f"{kind}_correct", np.zeros((0, len(ev.data.val)), dtype=bool))
    if len(done) and not np.array_equal(cache[f"{kind}_X"][: len(done)], X[: len(done)]):
        done = done[:0]  # another draw (other --subnets or --seed): start over
    rows = list(done)
    for x in bar(X[len(rows):], desc=f"{kind} subnets", initial=len(rows), total=len(X)):
        rows.append(ev.correct(net, net.space.decode(x)).astype(bool))
        cache[f"{kind}_X"], cache[f"{kind}_correct"] = X[: len(rows)], np.stack(rows)
        CACHE.parent.mkdir(exist_ok=True)
        tmp = CACHE.with_name(CACHE.name + ".tmp.npz")
        np.savez(tmp, **cache)
        os.replace(tmp, CACHE)
    return np.stack(rows)


BANDS = {"small (< 40 M)": (0, 40), "mid (40-100 M)": (40, 100), "large (>= 100 M)": (100, np.inf)}


def similar_cost_pairs(pred: np.ndarray, true: np.ndarray, macs: np.ndarray, lo: float, hi: float) -> float:
    """Share of subnet pairs within 25% of each other's MACs (the smaller in [lo, hi) M) that ``pred`` orders as
    ``true`` does: what a Pareto search asks of a predictor, since its cost objective already orders subnets of
    different size."""
    i, j = np.triu_indices(len(true), 1)
    small = np.minimum(macs[i], macs[j])
    keep = (np.maximum(macs[i], macs[j]) < 1.25 * small) & (small >= lo) & (small < hi) & (true[i] != true[j])
    return float(np.mean(np.sign(pred[i] - pred[j])[keep] == np.sign(true[i] - true[j])[keep]))


def split_scores(space, X: dict, y: dict, test: int, splits: int, seed: int) -> dict[str, dict[str, list[float]]]:
    """Scores of gbm predictors trained on equal numbers of uniform, stratified or half-and-half subnets, on ``test``
    held-out subnets of each sample: Kendall tau on each sample and on both, and similar-cost pair accuracy per MACs
    band on both; over ``splits`` random splits."""
    costs = cost_model(space)
    out: dict[str, dict[str, list[float]]] = {}
    for rep in range(splits):
        rng = np.random.default_rng([seed, rep])
        order = {k: rng.permutation(len(X[k])) for k in SAMPLES}
        m = min(len(X[k]) for k in SAMPLES) - test
        rest = {k: order[k][test : test + m] for k in SAMPLES}
        trains = {k: (X[k][rest[k]], y[k][rest[k]]) for k in SAMPLES}
        trains["half and half"] = (np.r_[X["uniform"][rest["uniform"][: m // 2]], X["stratified"][rest["stratified"][: m - m // 2]]],
                                   np.r_[y["uniform"][rest["uniform"][: m // 2]], y["stratified"][rest["stratified"][: m - m // 2]]])
        VX = np.r_[X["uniform"][order["uniform"][:test]], X["stratified"][order["stratified"][:test]]]
        Vy = np.r_[y["uniform"][order["uniform"][:test]], y["stratified"][order["stratified"][:test]]]
        macs = costs.batch(VX)[1] / 1e6
        for name, (TX, Ty) in trains.items():
            pred = AccuracyPredictor(space, "gbm", seed).fit(TX, Ty).top1_vectors(VX)
            scores = out.setdefault(name, {})
            for t, part in (("uniform", slice(0, test)), ("stratified", slice(test, None)), ("both", slice(None))):
                scores.setdefault(f"tau on {t}", []).append(kendalltau(pred[part], Vy[part]).statistic)
            for band, (lo, hi) in BANDS.items():
                scores.setdefault(band, []).append(similar_cost_pairs(pred, Vy, macs, lo, hi))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split the shipped supernet was trained on (imagefolder:PATH)")
    ap.add_argument("--subnets", type=int, default=128, help="subnets per sample")
    ap.add_argument("--seed", type=int, default=1, help="of the draws (the first shipped predictor's subnets were drawn with seed 0)")
    ap.add_argument("--write-predictor", metavar="PATH",
                    help="also fit a predictor on every subnet labelled here (both samples) and write it to PATH")
    args = ap.parse_args()
    space = get_space("cifar-mbv3")
    ckpt = read_checkpoint(resolve_checkpoint("cifar10"), space)
    net = Supernet.from_checkpoint(ckpt)
    ev = Evaluator(checkpoint_data(ckpt["data"], args.data))
    shipped = AccuracyPredictor.load("cifar10", space)
    known = {x.tobytes() for x in shipped.X}  # its tau is scored on the subnets it was not fitted on
    weights = hashlib.sha256(resolve_checkpoint("cifar10").read_bytes()).hexdigest()[:16]
    cache = dict(np.load(CACHE)) if CACHE.exists() else {}
    if str(cache.get("weights", "")) != weights:  # labels of other weights (an earlier shipped supernet): start over
        cache = {"weights": np.array(weights)}
    costs = cost_model(space)
    X, y, hits = {}, {}, {}
    for kind in SAMPLES:
        X[kind] = sample_archs(space, args.subnets, args.seed, stratified=kind == "stratified")
        hits[kind] = label(net, ev, X[kind], kind, cache)
        y[kind] = hits[kind].mean(1)
    rows = []
    for kind in SAMPLES:
        macs = costs.batch(X[kind])[1] / 1e6
        ceiling = label_reliability(hits[kind])["tau_ceiling"]
        unseen = np.array([x.tobytes() not in known for x in X[kind]])
        shipped_tau = (f"{kendalltau(shipped.top1_vectors(X[kind][unseen]), y[kind][unseen]).statistic:.3f}" if unseen.sum() > 2
                       else "(fitted on these)")
        rows.append(f"| {kind} | {len(X[kind])} | {np.percentile(macs, 5):.0f}-{np.percentile(macs, 95):.0f} M | "
                    f"{y[kind].min():.4f}-{y[kind].max():.4f} | {y[kind].std() * 100:.2f} points | {ceiling:.3f} | "
                    f"{shipped_tau} |")
        print(rows[-1], flush=True)
    test, splits = args.subnets // 4, 20
    scores = split_scores(space, X, y, test, splits, args.seed)
    trained = []
    for name, by_score in scores.items():
        cells = " | ".join(f"{np.mean(v):.3f} ± {np.std(v) / np.sqrt(len(v)):.3f}" for v in by_score.values())
        trained.append(f"| {name} | {cells} |")
        print(trained[-1], flush=True)
    n_train = min(len(v) for v in X.values()) - test
    body = [f"Two samples of subnets of the shipped CIFAR-10 supernet (`--checkpoint cifar10`), "
            f"labelled with top-1 on the {len(ev.data.val):,} held-out images, BN recalibrated on {len(ev.calib):,} training images "
            "(edgenas's protocol).  uniform: every gene uniform (`sample_archs`, as the shipped predictor's subnets); stratified: "
            "each subnet draws a size level and every gene follows it (`sample_archs(..., stratified=True)`).  Shipped predictor: "
            f"the one in `edgenas/pretrained/cifar10` when this ran ({len(shipped.X)} subnets, {shipped.report.get('sampling', 'uniform')}, "
            f"labelled {shipped.report.get('labelled_on', 'on the GPU')}), scored on the subnets it was not fitted on.  "
            "Split-half tau ceiling: `labels.tau_ceiling`, an "
            "estimate that assumes normally distributed accuracies.", "",
            "| sample | subnets | MACs, 5-95% | top-1 range | top-1 std | split-half tau ceiling | shipped predictor tau |",
            "|---|---|---|---|---|---|---|", *rows, "",
            f"Predictors (gbm) trained on {n_train} subnets of one sample, or half of each, and scored on {test} held-out subnets "
            f"of each sample: Kendall tau on each sample's and on all {2 * test}; and, on all {2 * test}, the share of pairs of "
            "subnets within 25% of each other's MACs that the predictor orders right, by the MACs of the smaller (what a Pareto "
            f"search asks of a predictor: its cost objective already orders subnets of different size).  Mean ± standard error "
            f"over {splits} random splits.", "",
            "| trained on | " + " | ".join(next(iter(scores.values()))) + " |", "|---|" + "---|" * len(next(iter(scores.values()))),
            *trained]
    update_section("Predictor: which subnets to learn from", "\n".join(body),
                   f"python benchmarks/predictor_sampling.py --data {args.data}", machine())
    if args.write_predictor:
        both = np.concatenate([hits[k] for k in SAMPLES])
        pred = AccuracyPredictor.fit_with_holdout(space, np.concatenate([X[k] for k in SAMPLES]), both.mean(1), 0.2, seed=0)
        pred.report.update(checkpoint="cifar10", sampling=" + ".join(f"{len(X[k])} {k}" for k in SAMPLES), labels=label_reliability(both),
                           labelled_on=f"on a CPU, float32 ({machine().split(',')[0]}), held-out {both.shape[1]:,} images; BN recalibrated "
                                       f"in one batch of {len(ev.calib):,} training images")
        pred.save(args.write_predictor)
        h = pred.report["holdout"]
        print(f"wrote {args.write_predictor}: {pred.report['model']}, held-out Kendall tau {h['kendall_tau']:.3f} (n = {h['n']})")


if __name__ == "__main__":
    main()
