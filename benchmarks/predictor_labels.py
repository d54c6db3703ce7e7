"""How many labelled subnets the shipped CIFAR-10 predictor needs, and how good it is on subnets it never saw.

    python benchmarks/predictor_labels.py --data imagefolder:../shared/data/cifar10/train.zip   # ~70 min on 2 cores
        [--labels benchmarks/_work/labels/pred-s2.labels.npz] [--write-predictor NEW.json] [--baseline OLD.json]

``--baseline``: the predictor whose labels the new ones are pooled with and which is scored on them (default: the
shipped one).  The shipped predictor has been the pooled one since 2026-12-07; to run this again, name the one shipped
before it: ``git show 273073f:edgenas/pretrained/cifar10/predictor.json > old.json``.

Labels ``--subnets`` more stratified subnets of the shipped supernet (seed 2; the shipped predictor's were drawn
with seed 1) on the 5,000 held-out images, BN recalibrated on 1,000 training images as the shipped labels were,
kept in ``--labels`` as they are measured (``edgenas predictor``'s label file: an interrupted run goes on, and
``edgenas predictor --samples N --seed 2 --calib-images 1000`` with the same ``--out`` stem shares them).  Then:

- the shipped predictor's Kendall tau on the new subnets, none of which it was fitted on (its recorded held-out
  tau comes from 51 subnets);
- four of the shipped predictor's own subnets labelled again here: the largest difference from its stored labels
  says whether the two label sets can be pooled;
- gbm fitted on 64, 128, 256 and all remaining subnets of the pooled labels, scored on the same held-out 20%
  of them, over 20 random splits: what more labels buy, over all sizes and among mid-sized subnets (40-100 M MACs)
  alone, whose top-1 differ least.

``--write-predictor``: a predictor fitted (``fit_with_holdout``: model chosen by cross-validation, scored on a
held-out 20%) on all pooled labels, for ``benchmarks/pretrained_card.py --replace-predictor``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from _report import machine, update_section
from predictor_sampling import BANDS, similar_cost_pairs
from scipy.stats import kendalltau, spearmanr

from edgenas.cost import cost_model
from edgenas.data import checkpoint_data
from edgenas.evaluate import Evaluator
from edgenas.io import exclusive
from edgenas.pretrained import resolve_checkpoint
from edgenas.search import AccuracyPredictor
from edgenas.search.labels import LabelFile, labels_key
from edgenas.search.predictor import SupernetAccuracy, _holdout_size, label_reliability, sample_archs
from edgenas.supernet import Supernet, read_checkpoint

ROOT = Path(__file__).resolve().parent.parent
RECHECKED = 4  # shipped subnets labelled again
SIZES = (64, 128, 256)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="the CIFAR-10 training split the shipped supernet was trained on (imagefolder:PATH)")
    ap.add_argument("--subnets", type=int, default=300)
    ap.add_argument("--seed", type=int, default=2, help="of the new draw")
    ap.add_argument("--labels", default=str(ROOT / ".data" / "predictor_labels.labels.npz"))
    ap.add_argument("--splits", type=int, default=20)
    ap.add_argument("--write-predictor", metavar="PATH")
    ap.add_argument("--baseline", default="cifar10", help="predictor file to pool with and score (default: the shipped one)")
    args = ap.parse_args()

    shipped = AccuracyPredictor.load(args.baseline)
    space = shipped.space
    ckpt = read_checkpoint(resolve_checkpoint("cifar10"), space)
    net = Supernet.from_checkpoint(ckpt)
    ev = Evaluator(checkpoint_data(ckpt["data"], args.data), calib_images=1000)
    Path(args.labels).parent.mkdir(parents=True, exist_ok=True)
    acc = SupernetAccuracy(net, ev)
    new = sample_archs(space, args.subnets, args.seed, stratified=True)
    with exclusive(args.labels, "predictor labels"):
        store = LabelFile(args.labels, labels_key(net, ev), ev.n)
        new_hits = acc.correct_matrix(new, labels=store)
        again = acc.correct_matrix(shipped.X[:RECHECKED], labels=store).mean(1)
    drift = np.abs(again - shipped.y[:RECHECKED]) * 100

    seen = {x.tobytes() for x in shipped.X}
    unseen = np.array([x.tobytes() not in seen for x in new])
    if unseen.sum() < 3:
        raise SystemExit(f"the baseline predictor {args.baseline} was fitted on the new subnets already: name the one before "
                         "them with --baseline (see this script's docstring)")
    Xn, yn = new[unseen], new_hits[unseen].mean(1)
    p = shipped.top1_vectors(Xn)
    macs_n = cost_model(space).batch(Xn)[1] / 1e6
    ceiling = label_reliability(new_hits[unseen])["tau_ceiling"]
    who = "shipped predictor" if args.baseline == "cifar10" else "predictor shipped before"
    shipped_row = (f"| {who} ({len(shipped.X)} subnets), on the {len(Xn)} new subnets | {kendalltau(p, yn).statistic:.3f} | "
                   f"{spearmanr(p, yn).statistic:.3f} | {similar_cost_pairs(p, yn, macs_n, 0, np.inf):.3f} |")
    print(shipped_row, flush=True)

    X, y = np.concatenate([shipped.X, Xn]), np.concatenate([shipped.y, yn])
    macs = cost_model(space).batch(X)[1] / 1e6
    n_test = _holdout_size(len(X), 0.2)
    sizes = [n for n in SIZES if n < len(X) - n_test] + [len(X) - n_test]
    taus: dict[int, list[float]] = {n: [] for n in sizes}
    mid_taus: dict[int, list[float]] = {n: [] for n in sizes}
    pairs: dict[int, list[float]] = {n: [] for n in sizes}
    lo, hi = BANDS["mid (40-100 M)"]
    mid_counts, new_mid = [], (macs_n >= lo) & (macs_n < hi)
    mid_ceiling = label_reliability(new_hits[unseen][new_mid])["tau_ceiling"]
    for rep in range(args.splits):
        order = np.random.default_rng(rep).permutation(len(X))
        test, rest = order[:n_test], order[n_test:]
        mid = (macs[test] >= lo) & (macs[test] < hi)
        mid_counts.append(mid.sum())
        for n in sizes:
            pred = AccuracyPredictor(space, "gbm", seed=0).fit(X[rest[:n]], y[rest[:n]]).top1_vectors(X[test])
            taus[n].append(kendalltau(pred, y[test]).statistic)
            mid_taus[n].append(kendalltau(pred[mid], y[test][mid]).statistic)
            pairs[n].append(similar_cost_pairs(pred, y[test], macs[test], 0, np.inf))
        print(f"split {rep + 1}/{args.splits}: " + ", ".join(f"{n}: {np.mean(taus[n]):.3f}" for n in sizes), flush=True)

    def cell(v: list[float]) -> str:
        return f"{np.mean(v):.3f} ± {np.std(v) / np.sqrt(len(v)):.3f}"

    curve = [f"| {n} | {cell(taus[n])} | {cell(mid_taus[n])} | {cell(pairs[n])} |" for n in sizes]
    body = [f"The shipped CIFAR-10 supernet (`--checkpoint cifar10`).  New labels: {len(new)} stratified subnets (seed {args.seed}; "
            f"{len(Xn)} not among the shipped predictor's), top-1 on the {ev.n:,} held-out images, BN recalibrated on "
            f"{len(ev.calib):,} training images, as the shipped predictor's {len(shipped.X)} labels "
            f"({shipped.report.get('sampling', '')}); split-half tau ceiling of the new labels {ceiling:.3f}.  "
            f"{RECHECKED} of the shipped subnets labelled again here differ from their stored labels by at most "
            f"{drift.max():.2f} points (mean {drift.mean():.2f}), so the two sets are pooled.", "",
            "| predictor | Kendall tau | Spearman | similar-cost pairs ordered right |", "|---|---|---|---|", shipped_row, "",
            f"gbm fitted on the first N of the other pooled subnets and scored on {n_test} held out ({len(X)} pooled), over "
            f"{args.splits} random splits (mean ± standard error); mid-sized: Kendall tau among the held-out subnets of "
            f"{lo}-{hi} M MACs alone ({np.mean(mid_counts):.0f} a split on average; uniformly drawn genes make such subnets, whose top-1 "
            f"differ least: the split-half tau ceiling of the {new_mid.sum()} such new labels is {mid_ceiling:.3f}); "
            "similar-cost pairs: held-out pairs within 25% of each other's MACs ordered right.", "",
            "| subnets fitted on | held-out Kendall tau | mid-sized alone | similar-cost pairs ordered right |", "|---|---|---|---|",
            *curve]
    if args.write_predictor:
        both = AccuracyPredictor.fit_with_holdout(space, X, y, 0.2, seed=0)
        both.report.update(checkpoint="cifar10", sampling=f"{shipped.report.get('sampling', '')} + {len(Xn)} stratified (seed {args.seed})",
                           labels=label_reliability(new_hits[unseen]),
                           labelled_on=f"{shipped.report.get('labelled_on', '')}; the {len(Xn)} added on a CPU, float32 "
                                       f"({machine().split(',')[0]}), the same images; labels.* of the added subnets only")
        both.save(args.write_predictor)
        h = both.report["holdout"]
        body += ["", f"Pooled predictor (`--write-predictor`): {both.report['model']} chosen by cross-validation, held-out Kendall tau "
                 f"{h['kendall_tau']:.3f}, Spearman {h['spearman']:.3f} on {h['n']} subnets."]
        print(f"wrote {args.write_predictor}: {both.report['model']}, held-out Kendall tau {h['kendall_tau']:.3f} (n = {h['n']})")
    update_section("Predictor: how many labels", "\n".join(body),
                   f"python benchmarks/predictor_labels.py --data {args.data}"
                   + (f" --baseline {args.baseline}" if args.baseline != "cifar10" else ""), machine())


if __name__ == "__main__":
    main()
