"""The argument parser: every command, its flags, their defaults and valid choices."""

from __future__ import annotations

import argparse

from .. import __version__
from ..checks import Range
from ..search.objectives import OBJECTIVES
from ..space import SAMPLINGS, list_spaces
from ..train.config import COMPILE_MODES
from .args import ARCH_HELP, CLASSES, IMAGES, SEED, device_args, timeout_arg, torch_device_arg

__all__ = ["build_parser"]

ALGORITHM_HELP = ("nsga2 (default), nsga3 and agemoea (3+ objectives; agemoea needs numba), random, reinforce (MnasNet "
                  "controller), surrogate (MSuNAS-style: NSGA-II on a predictor refitted on supernet evaluations; needs --checkpoint)")
SAMPLING_HELP = "stratified: archs of every size, from the smallest to the largest; uniform: every gene uniform (mid-sized archs)"
LIMIT_HELP = {"--max-latency": "e.g. 5ms, 500us, 0.2s", "--max-macs": "e.g. 300M, 2.5G", "--max-params": "e.g. 3.5M",
              "--min-top1": "e.g. 0.8 or 80%%"}


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each flag's default, but not the noise 'default: None'."""

    def _get_help_string(self, action: argparse.Action) -> str:
        if action.default in (None, False) or action.default is argparse.SUPPRESS:
            return action.help or ""
        return super()._get_help_string(action) or ""


def _limits(p: argparse.ArgumentParser, what: str) -> None:
    for name, example in LIMIT_HELP.items():
        p.add_argument(name, help=f"{what} ({example})")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="edgenas", description="Hardware-aware multi-objective NAS for edge devices.",
                                     formatter_class=_Formatter)
    parser.add_argument("--version", action="version", version=f"edgenas {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    spaces = list_spaces()

    def add(where, name: str, func: str, help: str, json: bool = True) -> argparse.ArgumentParser:
        p = where.add_parser(name, help=help, description=help, formatter_class=_Formatter)
        p.set_defaults(command_name=func)
        if json:
            p.add_argument("--json", action="store_true", help="print one JSON object on stdout")
        return p

    def space_arg(p: argparse.ArgumentParser, required: bool = True, recorded: str = "") -> None:
        p.add_argument("--space", required=required, metavar="SPACE",
                       help=f"search space: {', '.join(spaces)}, or a space file (.yaml/.json; see edgenas spaces --show)"
                            + (f"; default: the {recorded}'s" if recorded else ""))

    p = add(sub, "spaces", "spaces", "list the registered search spaces, or show one's definition")
    p.add_argument("--show", metavar="SPACE", help="print this space's definition (a name or a space file) as YAML: "
                   "copy it, or write 'base: NAME' and the fields to change, to define your own")

    p = add(sub, "quickstart", "quickstart", "the whole pipeline on the offline default (tiny space, digits, this CPU), "
                                             "or from a trained supernet (--checkpoint, --cifar10) without training; "
                                             "--device remote --runner CMD makes the model for a board or phone instead")
    p.add_argument("--cifar10", action="store_true",
                   help="start from the shipped CIFAR-10 supernet (trained on a GPU): search and export for the device, no training "
                        "(the same as --checkpoint cifar10)")
    p.add_argument("--checkpoint", help="start from this trained supernet (or a built-in name) instead of training one: "
                                        "profile, search and export for the device")
    p.add_argument("--predictor", help="with --checkpoint: its accuracy predictor (default: a built-in supernet's shipped one, "
                                       "else one fitted here on --predictor-samples of its subnets)")
    p.add_argument("--predictor-samples", type=Range(20, 100_000).arg("--predictor-samples"), default=150,
                   help="subnets a predictor fitted here is trained on")
    p.add_argument("--data", help="with --checkpoint: its data at a path here (default: as it records; a built-in supernet's "
                                  "shipped sample)")
    p.add_argument("--out", help="working directory (default: edgenas-quickstart, edgenas-quickstart-cifar10 with --cifar10, "
                                 "edgenas-quickstart-checkpoint with another --checkpoint; re-running skips finished steps)")
    p.add_argument("--max-latency", help="latency budget for the pick, e.g. 0.05ms or 50us (default: the front's median)")
    p.add_argument("--epoch-scale", type=Range(0.001, 1000, integer=False).arg("--epoch-scale"), default=2.5,
                   help="scale the training schedule")
    p.add_argument("--calibrate", type=Range(4, 10_000).arg("--calibrate"), default=16,
                   help="whole networks measured end to end to calibrate each latency table (default 16, in half the time of "
                        "the 30 `edgenas profile` measures: over the shipped tables, 3.4%% mean error on networks not fitted "
                        "on, against 3.3%% with 25; fewer profile faster and fit the table less well)")
    p.add_argument("--seed", type=SEED, default=0)
    device_args(p)  # the device the model is for: this CPU, another provider here, or a board or phone (--device remote)

    p = add(sub, "stats", "stats", "parameters and MACs of a subnet")
    space_arg(p)
    p.add_argument("--arch", required=True, help=ARCH_HELP)
    p.add_argument("--num-classes", type=CLASSES, help="classifier size (default: the space's)")

    p = add(sub, "export", "export", "extract a subnet, export it to ONNX and check ORT against PyTorch")
    space_arg(p, required=False, recorded="--checkpoint")
    p.add_argument("--arch", help=ARCH_HELP)
    p.add_argument("--from", dest="from_run", metavar="RUN", help="export the model picked from a search run")
    p.add_argument("--pick", default="best", choices=["best", "knee"], help="with --from: which front member")
    _limits(p, "with --from: budget for the pick")
    p.add_argument("--checkpoint", help="supernet checkpoint or a built-in name (cifar10) (default: seeded random weights)")
    p.add_argument("--data", help="evaluation/calibration data (default: the checkpoint's training data)")
    p.add_argument("--num-classes", type=CLASSES, help="classifier size without a checkpoint (default: the space's)")
    p.add_argument("--seed", type=SEED, default=0, help="seed of the random weights without a checkpoint")
    p.add_argument("--simplify", action="store_true", help="simplify the graph with onnxslim (parity re-checked)")
    p.add_argument("--int8", action="store_true", help="also write MODEL.int8.onnx (static QDQ, calibrated on training images)")
    p.add_argument("--calib-images", type=IMAGES, default=128, help="training images for int8 calibration")  # quantize.CALIBRATION_IMAGES
    p.add_argument("--int8-weight-bits", type=int, choices=[7, 8], default=8,
                   help="7 for x86 CPUs without VNNI (AVX2; AVX-512 before VNNI), whose int8 kernels saturate 8-bit weights")
    p.add_argument("--ort", action="store_true", help="also convert to ORT format for ONNX Runtime Mobile")
    p.add_argument("--mobile-report", action="store_true", help="report which ops NNAPI / CoreML would take")
    p.add_argument("--check", action="store_true", help="measure the exported model(s) on the device (deploy check)")
    p.add_argument("--table", help="latency table for --check (with --from: the run's table by default)")
    p.add_argument("--int8-table", help="int8 latency table to check the int8 model against")
    device_args(p)
    p.add_argument("--out", required=True, help="output .onnx path")

    deploy = add(sub, "deploy", "deploy", "what runs on the device (deploy check)", json=False)
    p = add(deploy.add_subparsers(dest="deploy_command", required=True, metavar="SUBCOMMAND"), "check", "deploy check",
            "measure an exported model on a device vs its predicted latency")
    p.add_argument("model", help="ONNX model exported by edgenas")
    p.add_argument("--table", required=True, help="latency table of the device (same precision as the model)")
    p.add_argument("--data", help="labelled data for top-1: the training data (its held-out split) or other data (all of it)")
    device_args(p)

    p = add(sub, "profile", "profile", "measure every block of a space on a device and write a latency table")
    device_args(p, required=True)
    space_arg(p)
    p.add_argument("--resolution", type=Range(1, 4096).arg("--resolution"), nargs="+", help="input resolutions (default: all of the space)")
    p.add_argument("--precision", default="fp32", choices=["fp32", "int8"])
    p.add_argument("--num-classes", type=CLASSES, help="classifier size (default: the space's)")
    p.add_argument("--calibrate", type=Range(0, 10_000).arg("--calibrate"), default=30,
                   help="whole networks measured end to end to calibrate (0: none)")
    p.add_argument("--seed", type=SEED, default=0)
    for name, lo, what in (("--warmup", 0, "warm-up runs"), ("--rounds", 1, "interleaved rounds"), ("--runs", 1, "timed runs per round")):
        p.add_argument(name, type=Range(lo, 100_000).arg(name), help=f"{what} (the protocol's default if omitted)")
    p.add_argument("--statistic", choices=["min", "median"],
                   help="what the table holds: the fastest timed run (default; repeats on a busy device) or the median")
    p.add_argument("--out", required=True, help="table path (.json); an unfinished one is resumed")

    p = add(sub, "latency", "latency", "predicted latency of a subnet from a table (and: latency validate, latency recalibrate)")
    p.add_argument("--table", help="latency table (.json)")
    space_arg(p, required=False, recorded="--table")
    p.add_argument("--arch", help=ARCH_HELP + "; random:SEED draws among the table's resolutions")
    latency_sub = p.add_subparsers(dest="latency_command", metavar="SUBCOMMAND")
    p = add(latency_sub, "validate", "latency validate", "measure random subnets end to end and compare with a table")
    p.add_argument("--table", required=True)
    p.add_argument("--samples", type=Range(1, 10_000).arg("--samples"), default=100, help="random subnets to measure")
    p.add_argument("--seed", type=SEED, default=12345)
    p.add_argument("--runner", help="remote tables: the command that runs deploy/agent.py on the device (required for them)")
    timeout_arg(p)
    p.add_argument("--no-noise-floor", action="store_true", help="measure once (skip the repeat pass)")
    p.add_argument("--out", help="report prefix (default: TABLE.validation -> .json and .png)")

    p = add(latency_sub, "recalibrate", "latency recalibrate",
            "measure a table's calibration networks again on its device and refit its calibration (corrects drift)")
    p.add_argument("--table", required=True)
    p.add_argument("--runner", help="remote tables: the command that runs deploy/agent.py on the device (required for them)")
    timeout_arg(p)
    p.add_argument("--out", help="where to write the recalibrated table (default: the table itself, atomically)")

    p = add(sub, "train", "train", "train a supernet with progressive shrinking (same command under torchrun for multi-GPU)")
    p.add_argument("--space", metavar="SPACE", help=f"search space: {', '.join(spaces)} (or 'space:' in --config)")
    p.add_argument("--data", help="digits (default), cifar10, cifar100, imagefolder:PATH (folder or .zip) or imagenet:PATH "
                                  "(PATH/train and PATH/val)")
    p.add_argument("--val-data", help="separate validation data (default: split --data; PATH/val for imagenet:PATH)")
    p.add_argument("--stream", action="store_true", help="decode images per batch from disk (default: only when the decoded set "
                                                         "would exceed --memory-budget)")
    p.add_argument("--memory-budget", type=Range(0.01, 1e5, integer=False).arg("--memory-budget"), metavar="GB",
                   help="decoded data above this streams from disk (default: a quarter of this machine's memory)")
    p.add_argument("--image-size", type=Range(1, 8192).arg("--image-size"), metavar="PX",
                   help="decode images at this size, shorter side (default: 1.15x the space's largest resolution)")
    p.add_argument("--workers", type=Range(0, 256).arg("--workers"), help="decoding processes when streaming (default: min(8, cores))")
    p.add_argument("--config", help="YAML training config (keys as in RUN/config.yaml); flags override it")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (or start it if it never wrote a checkpoint)")
    p.add_argument("--val-fraction", type=float, help="hold out this fraction (default 0.1)")
    p.add_argument("--val-per-class", type=int, help="hold out this many images per class")
    p.add_argument("--split", choices=["random", "last"], help="which images per class are held out (default random)")
    p.add_argument("--limit", type=int, help="use at most this many training images (scale down for a CPU)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--batch-size", type=int, help="per process (default 128); memory grows with it (the largest network's activations)")
    p.add_argument("--lr-base-size", type=int, help="the phases' learning rates are for this global batch; scaled linearly to the real one")
    p.add_argument("--grad-checkpointing", action="store_true",
                   help="recompute each block in backward instead of keeping its activations: far less memory, ~1/3 more compute")
    p.add_argument("--random-subnets", type=int, help="random subnets per step besides largest and smallest (default 2)")
    p.add_argument("--teacher", help="supernet checkpoint whose largest subnet distils (default: in-place)")
    p.add_argument("--init", metavar="CKPT", help="start from this supernet checkpoint's weights (a path or a built-in name: "
                                                  "cifar10) with this run's schedule; the same held-out split is required on the same images")
    p.add_argument("--epoch-scale", type=float, help="multiply the default schedule's epochs (default 1; 0.1 for a quick CPU run)")
    p.add_argument("--time-budget", type=float, metavar="MIN",
                   help="minutes for the whole schedule: step times are probed first and every phase's epochs scaled to fit, "
                        "then re-fitted into the time left at each phase start and after each phase's epochs 1, 2, 4, 8, ...")
    p.add_argument("--bn-calib-images", type=int, help="training images for BN recalibration before each evaluation (default 1000)")
    p.add_argument("--device", type=torch_device_arg(auto=True), help="auto (default: cuda if available), cpu, cuda, cuda:1")
    p.add_argument("--fp32", action="store_true", help="float32 steps (TF32 on NVIDIA tensor cores) instead of bf16 autocast, "
                                                        "the default on CUDA")
    p.add_argument("--cudnn-benchmark", action="store_true",
                   help="on a GPU, time cuDNN's convolution algorithms for each new layer shape and keep the fastest (a shape's first "
                        "step costs more: measure both before a long run)")
    p.add_argument("--static-shapes", action="store_true",
                   help="run every subnet at the largest layer shapes (the same results): on a GPU each new layer shape costs a "
                        "set-up, paid then once instead of for every subnet; on a CPU small subnets cost the largest one's time")
    p.add_argument("--compile", nargs="?", const=True, choices=COMPILE_MODES, metavar="MODE",
                   help="torch.compile the largest network (every step trains it; other subnets run eagerly), with --static-shapes "
                        "every subnet (one graph per resolution); MODE: "
                        + ", ".join(COMPILE_MODES) + " (reduce-overhead, cudagraphs: CUDA graphs, for launch-bound small images; "
                        "cudagraphs generates no code, so it is ready sooner)")

    p = add(sub, "eval", "eval", "top-1 of a subnet after BN recalibration")
    space_arg(p, required=False, recorded="--checkpoint")
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint, or a built-in name: cifar10")
    p.add_argument("--arch", required=True, help=ARCH_HELP)
    p.add_argument("--data", help="the checkpoint's training data at its path here (its held-out split is scored) or other labelled "
                                  "data (default: as recorded; a built-in supernet without its dataset: its shipped held-out images)")
    p.add_argument("--calib-data", help="training images for BN recalibration (default: the checkpoint's training split)")
    p.add_argument("--calib-images", type=IMAGES, default=1000)
    p.add_argument("--no-recalibrate", action="store_true", help="use the BN statistics stored in the supernet")
    p.add_argument("--device", type=torch_device_arg(), default="cpu")

    p = add(sub, "search", "search", "multi-objective search over a space")
    p.add_argument("--config", help="search recipe (YAML, see search/); flags override it")
    p.add_argument("--space", metavar="SPACE", help=f"search space: {', '.join(spaces)} (default: the recipe's, else the one the "
                                                    "--predictor, --checkpoint or --table records)")
    p.add_argument("--objectives", help=f"comma-separated, of: {', '.join(OBJECTIVES)} (default top1,latency)")
    p.add_argument("--algorithm", metavar="ALGO", help=ALGORITHM_HELP)
    p.add_argument("--pop-size", type=int, help="default 100 with --predictor or no top1, 40 when the supernet scores each arch")
    p.add_argument("--generations", type=int, help="default 50 with --predictor or no top1, else 25 (rounds, for surrogate)")
    p.add_argument("--sampling", choices=SAMPLINGS, help=SAMPLING_HELP + "; for the first generation (random search: "
                   "every arch; reinforce's controller draws its own) (default stratified: the front's ends are in reach from the start)")
    p.add_argument("--seed", type=int, help="default 0")
    p.add_argument("--table", help="latency table (for the latency objective or --max-latency)")
    p.add_argument("--checkpoint", help="supernet checkpoint or a built-in name (cifar10): top1 from the supernet")
    p.add_argument("--data", help="the data the supernet was trained on")
    p.add_argument("--predictor", help="accuracy predictor (edgenas predictor) or a built-in name (cifar10): fast top1")
    p.add_argument("--num-classes", type=int)
    _limits(p, "constraint")
    p.add_argument("--resolutions", type=int, nargs="+", help="resolutions to search (default: the table's, else all)")
    p.add_argument("--precision", dest="precisions", metavar="P[,P]",
                   help="fp32 (default), int8, or fp32,int8: search (arch, precision) pairs, each with its own latency table")
    p.add_argument("--int8-table", help="with --precision fp32,int8: the int8 latency table (--table holds fp32)")
    p.add_argument("--int8-drop", type=float, metavar="POINTS",
                   help="top-1 points int8 loses (default with --checkpoint: measured on 5 subnets)")
    p.add_argument("--no-baseline", action="store_true", help="skip the random-search baseline run")
    p.add_argument("--device", type=torch_device_arg(), help="device for supernet evaluation (default cpu)")
    p.add_argument("--static-shapes", action="store_true", help="score subnets inside the supernet at its largest layer shapes "
                                                                "(the same top-1; on a GPU no set-up per subnet's new shapes)")
    p.add_argument("--out", required=True, help="run directory")
    p.add_argument("--resume", action="store_true", help="continue the run in --out (or start it if it never wrote anything)")

    p = add(sub, "pick", "pick", "choose a model from a search run's front")
    p.add_argument("run", help="search run directory")
    _limits(p, "budget")
    p.add_argument("--knee", action="store_true", help="the knee point instead of the most accurate")
    p.add_argument("--out", help="write the chosen arch (OFA JSON) here")

    p = add(sub, "predictor", "predictor", "fit an accuracy predictor on supernet evaluations")
    space_arg(p, required=False, recorded="--checkpoint")
    p.add_argument("--checkpoint", required=True, help="supernet checkpoint, or a built-in name: cifar10")
    p.add_argument("--data", help="the data the checkpoint was trained on (default: as recorded in it)")
    p.add_argument("--samples", type=Range(10, 100_000).arg("--samples"), default=300, help="archs evaluated with the supernet")
    p.add_argument("--holdout", type=Range(0.05, 0.9, integer=False).arg("--holdout"), default=0.2, help="fraction held out to score")
    p.add_argument("--resolution", type=Range(1, 4096).arg("--resolution"), nargs="+", help="sample archs at these resolutions only")
    p.add_argument("--sampling", choices=SAMPLINGS, default="stratified", help=SAMPLING_HELP)
    p.add_argument("--calib-images", type=IMAGES, default=500)
    p.add_argument("--time-limit", type=Range(1e-4, 1e6, integer=False).arg("--time-limit"), metavar="MIN",
                   help="evaluate archs for at most this many minutes (up to --samples) and fit on those")
    p.add_argument("--seed", type=SEED, default=0)
    p.add_argument("--device", type=torch_device_arg(), default="cpu")
    p.add_argument("--static-shapes", action="store_true", help="label subnets in the supernet at its largest layer shapes "
                                                                "(the same labels; on a GPU no set-up per subnet's new shapes)")
    p.add_argument("--out", required=True, help="predictor file (.json); its labels are kept beside it (NAME.labels.npz) as they are "
                                                "measured, and a rerun goes on from them")
    return parser
