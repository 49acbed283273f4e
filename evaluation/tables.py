"""Tables 2 and 3 of the paper: average IoU per tracker and sequence length, one block per
mask threshold, as Markdown on stdout and CSV / LaTeX (booktabs) files.

    python -m evaluation.tables [--trackers pixtrack,pixtrack-1stage,pixtrack-fcn] [--checkpoint NAME=PATH]
        [--thresholds 0.4 0.7] [--lengths 20 40 80 160] [--dataset DIR] [--device cpu]
        [--out DIR] [--workspace W] [--paper] [--clips N]

With no arguments: the registered trackers' shipped checkpoints on the default benchmark
(workspace/sequences); trackers that cannot be built are left out with a note. A cell is
the mean over sequences of the mean IoU over frames 1..L (evaluation.protocols), with its 95%
bootstrap interval over sequences where there are at least 5 (`--ci` / `--no-ci` force it on
or off; evaluation.bootstrap). Runs are
cached (outputs/cache/runs by default), so a second call re-reads rather than re-tracks.
`--workspace W` scores the masks `vot evaluate` stored in W instead of tracking (Table 3
only: VOT runs are full tracking). `--checkpoint NAME=folds.json` evaluates k-fold
checkpoints (evaluation.protocols.load_checkpoint_map). `--clips N` adds the pixel AUC
over N random 32-frame clips (Fig. 4). `--workers N` tracks the runs N at a time and
`--shard I/N` only a part of them, into the cache (evaluation.parallel). The table model is
evaluation.table_model, its rendering evaluation.table_render.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence as Seq
from pathlib import Path

from evaluation.parallel import spread_arguments, spread_from
from evaluation.protocols import CLIP_LENGTH, GT_ROI, PAPER_LENGTHS, PAPER_THRESHOLDS, PROTOCOLS
from evaluation.table_model import TABLE_PROTOCOLS, build_table
from evaluation.table_render import clip_report, emit_table, plot_sequence_ious

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATASET = REPO / "workspace" / "sequences"
DEFAULT_OUT = REPO / "outputs" / "tables"
DEFAULT_CACHE = REPO / "outputs" / "cache" / "runs"
DEFAULT_TRACKERS = ("pixtrack", "pixtrack-plus", "pixtrack-1stage", "pixtrack-fcn")

def _names(values: Seq[str] | None) -> list[str] | None:
    """`--trackers a,b c` -> [a, b, c]."""
    if not values:
        return None
    return [name for value in values for name in value.split(",") if name]


def _same_tracker(name: str, trackers: Seq[str]) -> str:
    """The one of `trackers` that `name` names, by name or alias (`two-stage` = `pixtrack`);
    `name` itself when none does or it is not registered (a label, a typo: reported by the caller)."""
    from tracker.registry import canonical_name, known_names

    if name in trackers or name not in known_names():
        return name
    same = [tracker for tracker in trackers if tracker in known_names() and canonical_name(tracker) == canonical_name(name)]
    return same[0] if len(same) == 1 else name


def parse_checkpoints(values: Seq[str] | None, trackers: Seq[str]) -> dict[str, object]:
    """`--checkpoint NAME=PATH` (or a bare PATH for a single tracker) -> {name: path or
    sequence -> path mapping (a .json file of k-fold checkpoints)}."""
    from evaluation.protocols import load_checkpoint_map

    result: dict[str, object] = {}
    for value in values or []:
        name, separator, path = value.partition("=")
        if not separator:
            if len(trackers) != 1:
                raise ValueError(f"--checkpoint {value!r}: say which tracker it is for (NAME=PATH), as {len(trackers)} trackers run")
            name, path = trackers[0], value
        name = _same_tracker(name, trackers)
        if name not in trackers:
            raise ValueError(f"--checkpoint {value!r}: {name!r} is not among the trackers ({', '.join(trackers)})")
        if path.endswith(".json"):
            result[name] = load_checkpoint_map(path)
        else:
            if not Path(path).is_file():
                raise FileNotFoundError(f"--checkpoint {value!r}: no file {path!r}")
            result[name] = path
    return result


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m evaluation.tables",
        description="Tables 2 and 3 of the paper (average IoU per tracker and sequence length).",
    )
    parser.add_argument("--trackers", nargs="+", help=f"tracker names, comma or space separated (default: {','.join(DEFAULT_TRACKERS)}; with --workspace: every tracker with results)")
    parser.add_argument("--checkpoint", action="append", metavar="NAME=PATH", help="checkpoint of a tracker (repeatable); PATH.json = a k-fold map sequence -> checkpoint")
    parser.add_argument("--thresholds", nargs="+", type=float, default=list(PAPER_THRESHOLDS), help="mask thresholds, one block each (default: %(default)s)")
    parser.add_argument("--lengths", nargs="+", type=int, default=list(PAPER_LENGTHS), help="sequence lengths, one column each (default: %(default)s)")
    parser.add_argument("--tables", nargs="+", type=int, choices=(2, 3), help="which tables (default: 2 3; with --workspace: 3)")
    parser.add_argument("--dataset", type=Path, help=f"VOT sequences folder or DAVIS root (default: {DEFAULT_DATASET.relative_to(REPO)}, or the workspace's sequences)")
    parser.add_argument("--sequences", nargs="+", help="only these sequences (names, comma or space separated)")
    parser.add_argument("--split", help="only the sequences of a split list (<dataset>/<split>.txt, or DAVIS's ImageSets), e.g. train")
    parser.add_argument("--device", default=None, help="auto (default), cpu, cuda or cuda:N")
    parser.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "fp16"),
                        help="fp32 (default), bf16 (CPU with AVX512-BF16, or CUDA) or fp16 (CUDA); pixtrack and pixtrack-1stage only; rows are then labelled e.g. pixtrack@bf16 (and cached apart)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="folder for table<N>.csv / .tex (default: %(default)s)")
    parser.add_argument("--workspace", type=Path, help="score the masks `vot evaluate` stored in this VOT workspace instead of tracking")
    parser.add_argument("--experiment", default="unsupervised", help="the workspace's experiment to read (default: %(default)s)")
    parser.add_argument("--paper", action="store_true", help="print the paper's numbers beside ours")
    parser.add_argument("--ci", action=argparse.BooleanOptionalAction, default=None,
                        help="95%% bootstrap interval over sequences beside each mean (default: on from 5 sequences)")
    parser.add_argument("--clips", type=int, default=0, help="also the pixel ROC AUC over this many random clips (the paper: 1200)")
    parser.add_argument("--clip-length", type=int, default=CLIP_LENGTH, help="frames a clip scores after its initial one (default: %(default)s)")
    parser.add_argument("--clip-protocol", choices=PROTOCOLS, default=GT_ROI, help="ROIs of the clips (default: %(default)s, as Fig. 4)")
    parser.add_argument("--plots", action="store_true", help="also write figures to --out: IoU over time per sequence (Table 3) and, with --clips, Fig. 4's ROC and framewise IoU")
    parser.add_argument("--seed", type=int, default=0, help="seed of the clips (default: %(default)s)")
    parser.add_argument("--cache", type=Path, default=DEFAULT_CACHE, help="run cache folder (default: %(default)s)")
    parser.add_argument("--no-cache", action="store_true", help="keep no runs")
    parser.add_argument("--refresh", action="store_true", help="track again even where runs are cached (and replace them)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")
    spread_arguments(parser)
    return parser


def _load_sequences(dataset: Path, sequences: Seq[str] | None, split: str | None):
    """The test set, every sequence checked trackable (two frames, a first mask) before any is tracked."""
    from tracker.data import check_all_trackable, load_dataset

    names = _names(sequences)
    if names is not None and split is not None:
        raise ValueError("give --sequences or --split, not both")
    loaded = load_dataset(dataset, split if split is not None else names)
    if not loaded:
        raise ValueError(f"the test set is empty: no sequences in {dataset}")
    return check_all_trackable(loaded)


def _tracker_specs(args, device: str | None, sequences) -> list:
    from evaluation.protocols import registered_tracker
    from tracker.registry import tracker_names

    explicit = _names(args.trackers)
    names = explicit or [name for name in DEFAULT_TRACKERS if name in tracker_names()]
    if not names:
        raise ValueError(f"none of the default trackers ({', '.join(DEFAULT_TRACKERS)}) is registered; known: {', '.join(tracker_names())}")
    checkpoints = parse_checkpoints(args.checkpoint, names)
    specs = []
    for name in names:
        spec = registered_tracker(name, checkpoints.get(name), device=device, precision=args.precision)
        if explicit is None:
            # Defaults: a tracker whose shipped checkpoint is missing is left out, with a note.
            try:
                spec.tracker_for(sequences[0].name)
            except (FileNotFoundError, ValueError, RuntimeError, OSError) as error:
                print(f"note: left out tracker {name!r}: {error}", file=sys.stderr)
                continue
        specs.append(spec)
    if not specs:
        raise ValueError("no tracker could be built; pass --trackers and --checkpoint")
    return specs


def run(args: argparse.Namespace) -> int:
    from evaluation.results_cache import RunCache, dataset_id
    from evaluation.seen import warn_training_set

    tables = sorted(set(args.tables or ([3] if args.workspace else [2, 3])))
    thresholds = [float(value) for value in args.thresholds]
    for threshold in thresholds:
        if not 0.0 <= threshold <= 1.0:
            raise ValueError(f"--thresholds: {threshold} is not in [0, 1]")
    lengths = [int(value) for value in args.lengths]
    if min(lengths) < 1:
        raise ValueError(f"--lengths must be positive, got {lengths}")
    outputs: list[str] = []
    if args.workspace is not None:
        from evaluation.vot_results import results_folder, workspace_scores, workspace_sequences_folder, workspace_trackers

        if 2 in tables:
            raise ValueError("--workspace gives Table 3 only: `vot evaluate` runs full tracking, not Table 2's ROIs")
        if args.clips:
            raise ValueError("--clips needs probability maps; VOT results hold binary masks")
        results_folder(args.workspace)  # the most likely mistake first
        dataset = args.dataset or workspace_sequences_folder(args.workspace)
        sequences = _load_sequences(dataset, args.sequences, args.split)
        trackers = _names(args.trackers) or workspace_trackers(args.workspace, args.experiment)
        scores = workspace_scores(args.workspace, sequences, trackers, args.experiment, lengths, thresholds)
        source = (f"VOT results in {args.workspace} ({args.experiment}): masks binarised by the tracker "
                  "(`python -m tracker.vot --threshold`, 0.5), so every threshold block is the same")
        from evaluation.running import registered_tracker
        from tracker.registry import known_names

        # trackers.ini runs the registered trackers with their shipped checkpoints.
        shipped = [registered_tracker(name) for name in trackers if name in known_names()]
        source = warn_training_set(shipped, sequences, source)
        table = build_table(3, scores, thresholds, lengths, trackers, paper=args.paper, ci=args.ci)
        outputs.append(emit_table(table, scores, args.out, source))
        if args.plots:
            plot_sequence_ious(scores, 3, max(lengths), thresholds[0], args.out)
        print("\n\n".join(outputs))
        return 0

    from tracker.device import resolve_device

    device = str(resolve_device(args.device))
    dataset = args.dataset or DEFAULT_DATASET
    if not Path(dataset).exists():
        raise FileNotFoundError(
            f"dataset {str(dataset)!r} does not exist; generate the benchmark (`pixtrack synth`) or pass --dataset"
        )
    sequences = _load_sequences(dataset, args.sequences, args.split)
    specs = _tracker_specs(args, device, sequences)
    cache = RunCache(None if args.no_cache else args.cache)
    dataset_key = dataset_id(dataset)
    source = warn_training_set(specs, sequences, f"{len(sequences)} sequences of {dataset}")
    from evaluation.protocols import evaluate_lengths

    refresh = args.refresh
    spread = spread_from(args)
    if spread.threads is not None:  # this process's own tracking too: results depend on the thread count
        import torch

        torch.set_num_threads(spread.threads)
    if spread.spreads:
        from evaluation.parallel import fill_cache
        from evaluation.protocols import clip_requests, length_requests, sample_clips

        requests = [r for number in tables for r in length_requests(specs, sequences, TABLE_PROTOCOLS[number], lengths)]
        if args.clips:
            clips = sample_clips(sequences, args.clips, args.clip_length, seed=args.seed)
            requests += clip_requests(specs, clips, args.clip_protocol)
        report = fill_cache(requests, specs, sequences, cache, dataset_key, spread, device,
                            progress=not args.no_progress, refresh=refresh)
        if spread.shard is not None:
            index, count = spread.shard
            print(f"shard {index}/{count}: {report.summary()} into {cache.root}; "
                  "once every shard is done, the same command without --shard writes the tables")
            return 0
        print(report.summary(), file=sys.stderr)
        refresh = False  # the runs were just tracked afresh

    for number in tables:
        scores = evaluate_lengths(
            specs, sequences, TABLE_PROTOCOLS[number], lengths, thresholds, cache, dataset_key, device,
            progress=not args.no_progress, refresh=refresh,
        )
        table = build_table(number, scores, thresholds, lengths, [spec.name for spec in specs], paper=args.paper,
                            ci=args.ci)
        outputs.append(emit_table(table, scores, args.out, source))
        if args.plots:
            plot_sequence_ious(scores, number, max(lengths), thresholds[0], args.out)
    if args.clips:
        outputs.append(_clip_auc(args, specs, sequences, cache, dataset_key, device, thresholds, refresh))
    print("\n\n".join(outputs))
    return 0


def _clip_auc(args, specs, sequences, cache, dataset_key: str, device: str, thresholds: Seq[float],
              refresh: bool) -> str:
    from evaluation.protocols import evaluate_clips, sample_clips

    clips = sample_clips(sequences, args.clips, args.clip_length, seed=args.seed)
    results = evaluate_clips(
        specs, sequences, clips, args.clip_protocol, thresholds, cache, dataset_key,
        device=device, progress=not args.no_progress, refresh=refresh,
    )
    heading = (f"**Pixel ROC AUC** over {len(clips)} clips of {args.clip_length} frames "
               f"(protocol {args.clip_protocol}, seed {args.seed})")
    return clip_report(results, thresholds, args.out, heading, f"{len(clips)} clips, protocol {args.clip_protocol}",
                       plots=args.plots)



def main(argv: Seq[str] | None = None) -> int:
    from tracker.arithmetic import pin_blas_branch
    from tracker.console import run_guarded

    pin_blas_branch()  # before any MKL call (tracker.arithmetic)
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_guarded("evaluation.tables", lambda: run(args), "interrupted (finished sequences are cached)")


if __name__ == "__main__":
    sys.exit(main())
