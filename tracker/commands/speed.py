"""`pixtrack speed`: the timing benchmark of issue 8 (see `evaluation.speed`).

    pixtrack speed [--trackers pixtrack,pixtrack-1stage,pixtrack-fcn] [--configs paper lite]
        [--sizes 640x360 1280x720 1920x1080] [--device cpu|cuda] [--repeats 10] [--warmup 3]
        [--init-repeats 3] [--interleave-floor] [--threads N] [--checkpoint TWO_STAGE]
        [--fcn-checkpoint FCN] [--precision fp32|bf16|fp16] [--out speed.json]

Prints a Markdown table (median and interquartile range in ms of init, the per-frame total
and its parts, frames per second, and the ratio to the backbone floor) and writes the JSON.
No trained checkpoint is needed: fresh models of each configuration are timed (timing does
not depend on weight values), with the real VGG16 weights.
"""

from __future__ import annotations

import argparse

HELP = "time init and per-frame tracking (global, local, crop, paste) against the VGG16 floor; table + JSON"

DEFAULT_OUT = "outputs/speed/speed-{device}.json"


def _names(values: list[str]) -> list[str]:
    return [name for value in values for name in value.split(",") if name]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--trackers", nargs="+", default=["pixtrack"],
                        help="trackers to time, comma or space separated: pixtrack, pixtrack-1stage, pixtrack-fcn "
                             "(or their older names; default: pixtrack)")
    parser.add_argument("--configs", nargs="+", default=["paper", "lite"],
                        help="model configurations (default: paper lite)")
    parser.add_argument("--sizes", nargs="+", default=["640x360", "1280x720", "1920x1080"], metavar="WxH",
                        help="frame sizes (default: 640x360 1280x720 1920x1080)")
    parser.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--repeats", type=int, default=10, help="timed runs of each measurement (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed runs before them (default 3)")
    parser.add_argument("--init-repeats", type=int, default=3,
                        help="timed runs of init, after one untimed (default 3: init costs about two frames)")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--checkpoint", default=None,
                        help="a two-stage checkpoint to time (pixtrack and pixtrack-1stage) instead of fresh models")
    parser.add_argument("--fcn-checkpoint", default=None, help="an fcn checkpoint to time instead of a fresh FCN")
    parser.add_argument("--interleave-floor", action="store_true",
                        help="also time the floor in every result's rounds and take its ratio against that "
                             "(honest ratios on a machine shared with other work; a third more time)")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="fp32 (default); bf16 (CPUs with AVX512-BF16, CUDA) or fp16 (CUDA): the "
                             "trackers and the floor under that autocast (pixtrack and pixtrack-1stage only)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fresh models and the frames (default 0)")
    parser.add_argument("--out", default=None,
                        help=f"the JSON file to write (default: {DEFAULT_OUT.format(device='DEVICE')})")
    parser.add_argument("--quiet", action="store_true", help="no progress lines on stderr")


def run(args: argparse.Namespace) -> int:
    import sys

    import torch

    from evaluation import speed
    from tracker.config import get_config
    from tracker.device import resolve_device
    from tracker.registry import entry

    trackers = _names(args.trackers)
    for name in trackers:
        if "config" not in entry(name).options:  # an unknown name fails here too, listing the known ones
            raise ValueError(f"--trackers: {name!r} has no models to time")
    configs = _names(args.configs)
    for name in configs:
        get_config(name)  # an unknown configuration fails before anything is timed
    sizes = [speed.parse_size(text) for text in args.sizes]
    if args.repeats < 1 or args.warmup < 0 or args.init_repeats < 1:
        raise ValueError("--repeats and --init-repeats must be >= 1, --warmup >= 0")
    for option, path in (("--checkpoint", args.checkpoint), ("--fcn-checkpoint", args.fcn_checkpoint)):
        if path is not None:
            from pathlib import Path

            if not Path(path).is_file():
                raise FileNotFoundError(f"{option}: no file {path}")
    if args.threads is not None:
        if args.threads < 1:
            raise ValueError(f"--threads {args.threads}: must be >= 1")
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    def say(message: str) -> None:
        if not args.quiet:
            print(f"timing {message} ...", file=sys.stderr, flush=True)

    benchmark = speed.run_benchmark(
        trackers, configs, sizes, device, repeats=args.repeats, warmup=args.warmup,
        init_repeats=args.init_repeats, checkpoint=args.checkpoint, fcn_checkpoint=args.fcn_checkpoint,
        seed=args.seed, interleave_floor=args.interleave_floor, progress=say, precision=args.precision,
    )
    out = args.out or DEFAULT_OUT.format(device=device.type)
    path = speed.write_json(benchmark, out)
    print(speed.to_markdown(benchmark))
    print(f"wrote {path}", file=sys.stderr)
    return 0
