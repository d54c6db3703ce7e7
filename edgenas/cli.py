"""``edgenas`` command line: thin wrappers over the library (contracts in README, 'CLI')."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Callable, Sequence

from . import __version__
from .errors import EdgeNASError

__all__ = ["main"]


def _emit(args: argparse.Namespace, result: dict[str, Any], lines: Sequence[str]) -> None:
    """One JSON object on stdout with --json, else human-readable lines."""
    if args.json:
        print(json.dumps(result))
    else:
        print("\n".join(lines))


def _space_and_arch(args: argparse.Namespace):
    from .space import get_space

    space = get_space(args.space)
    return space, space.parse_arch(args.arch)


def cmd_spaces(args: argparse.Namespace) -> int:
    from .space import get_space, list_spaces

    rows = []
    for name in list_spaces():
        sp = get_space(name)
        per_stage = sum((len(sp.ks_choices) * len(sp.e_choices)) ** d for d in sp.d_choices)
        rows.append({
            "name": name, "digest": sp.digest(), "n_archs": per_stage**sp.n_stages * len(sp.resolutions),
            "resolutions": list(sp.resolutions), "ks": list(sp.ks_choices), "e": list(sp.e_choices),
            "d": list(sp.d_choices), "num_classes": sp.num_classes, "description": sp.description,
        })
    _emit(args, {"spaces": rows}, [f"{r['name']:<12} {r['n_archs']:.2e} archs  r={r['resolutions'][0]}..{r['resolutions'][-1]}  {r['description']}" for r in rows])
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from .cost import stats

    space, arch = _space_and_arch(args)
    st = stats(space, arch, args.num_classes)
    result = {**st.to_dict(), "space": space.name, "arch": arch.to_dict()}
    _emit(args, result, [f"params      {st.params:,}", f"macs        {st.macs:,}", f"resolution  {st.resolution}"])
    return 0


def cmd_export(args: argparse.Namespace) -> int:
    from .cost import stats
    from .export import export_onnx
    from .io import check_writable
    from .supernet import Supernet, noise_batches, recalibrate_bn

    space, arch = _space_and_arch(args)
    check_writable(args.out)
    if args.checkpoint:
        net = Supernet.load(args.checkpoint, space)
        if args.num_classes and args.num_classes != net.num_classes:
            raise EdgeNASError(f"--num-classes {args.num_classes} contradicts the checkpoint's {net.num_classes} classes")
        model = net.extract(arch).eval()
    else:  # seeded random weights, BN statistics from seeded noise: for latency work before training
        model = Supernet(space, args.num_classes, seed=args.seed).extract(arch)
        recalibrate_bn(model, noise_batches(arch.r, seed=args.seed)).eval()
    res = export_onnx(model, arch.r, args.out, simplify=args.simplify)
    st = stats(space, arch, model.spec.head.num_classes)
    result = {"path": str(res.path), "max_abs_diff": res.max_abs_diff, "opset": res.opset, "simplified": res.simplified,
              **st.to_dict(), "space": space.name, "arch": arch.to_dict()}
    _emit(args, result, [f"wrote {res.path} (opset {res.opset})", f"max |ORT - PyTorch| = {res.max_abs_diff:.3g}",
                         f"params {st.params:,}  macs {st.macs:,}  resolution {arch.r}"])
    return 0


ARCH_HELP = "inline JSON {\"ks\":[...],\"e\":[...],\"d\":[...],\"r\":R}, @file.json, max, min or random:SEED"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgenas", description="Hardware-aware multi-objective NAS for edge devices.")
    parser.add_argument("--version", action="version", version=f"edgenas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, func: Callable[[argparse.Namespace], int], help: str) -> argparse.ArgumentParser:
        p = sub.add_parser(name, help=help, description=help)
        p.set_defaults(func=func)
        p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return p

    add("spaces", cmd_spaces, "list the registered search spaces")

    p = add("stats", cmd_stats, "parameters and MACs of a subnet")
    p.add_argument("--space", required=True)
    p.add_argument("--arch", required=True, help=ARCH_HELP)
    p.add_argument("--num-classes", type=int, help="classifier size (default: the space's)")

    p = add("export", cmd_export, "extract a subnet, export it to ONNX and check ORT against PyTorch")
    p.add_argument("--space", required=True)
    p.add_argument("--arch", required=True, help=ARCH_HELP)
    p.add_argument("--checkpoint", help="supernet checkpoint (default: seeded random weights)")
    p.add_argument("--num-classes", type=int, help="classifier size without a checkpoint (default: the space's)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random weights without a checkpoint")
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim (parity re-checked)")
    p.add_argument("--out", required=True, help="output .onnx path")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if getattr(args, "num_classes", None) is not None and args.num_classes < 1:
        parser.error("--num-classes must be a positive integer")
    try:
        return args.func(args)
    except EdgeNASError as exc:
        print(f"edgenas: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("edgenas: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
