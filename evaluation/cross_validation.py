"""k-fold cross-validation in one command: train each fold's checkpoints with the project's
own training commands, evaluate each held-out fold with its own checkpoints, and report the
mean IoU per fold and over all folds.

    python -m evaluation.cross_validation --dataset data/davis2016-train \
        --folds checkpoints/davis2016-train-5folds.json --out runs/cv \
        [--fold-indices 0 1] [--config lite] [--trackers pixtrack pixtrack-plus pixtrack-1stage pixtrack-fcn pixtrack-static] \
        [--recipe recipes/lite.toml] \
        [--fcn-args "--iterations 2000 --half"] [--iterative-args "--local-init {fcn} --half"] \
        [--train-only | --evaluate-only] [--train-workers N] [--clips N] [--dry-run]

Per fold I (a rerun resumes: training commands resume in their folders, finished checkpoints
are kept, tracking runs are cached):
1. `pixtrack train fcn --fold I` into OUT/fold-I/fcn/ (its checkpoint never replaces the
   shipped one);
2. `pixtrack train iterative --fold I` into OUT/fold-I/two-stage/; `{fcn}` in
   --iterative-args stands for this fold's FCN checkpoint (for `--local-init {fcn}`);
3. `python -m evaluation.tables` on fold I's test sequences with those checkpoints
   (the 1-stage tracker and pixtrack-plus read the two-stage file) into OUT/tables/fold-I/.
With `--recipe FILE` both training commands run that recipe's `[fcn]` and `[iterative]` tables
(its data, its settings), the fold's `--folds/--fold/--out` given beside it, and the two-stage
run starts from the fold's own FCN (`--local-init`). `--train-workers N` trains N folds side by
side (one process each: a GPU, or a machine with cores to spare; with N > 1 each fold's Sec. 5.1
steps 1 and 2 are two jobs too, so two workers keep a 2-core CPU busy even on one fold);
`--train-only` stops there.

Then OUT/two-stage.json and OUT/fcn.json (k-fold checkpoint maps, as `--checkpoint
NAME=MAP` takes them), the tables over every evaluated fold's sequences (OUT/tables/all/;
the folds of this run and those an earlier run evaluated into OUT, so folds may come piece by piece)
and OUT/cross_validation.csv / .md: one row per fold, tracker and threshold, and the
all-folds row. Issue 4's bar reads from it: each fold's two-stage row against its static row.
With `--clips N` each fold's tables step also scores the pixel ROC AUC over N clips of its
own sequences (Fig. 4's protocol), summarised per fold and as the mean of the folds in
OUT/cross_validation_auc.csv and the .md (clips are not sampled again over all folds: that
would track every clip again).

Training and evaluation run as subprocesses of this Python, so each stage is exactly the
command a user would type (printed before it runs) and one failing fold is reported with
the command to rerun, without losing the folds already done.
"""

from __future__ import annotations

import argparse
import csv
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from evaluation.bootstrap import format_interval
from tracker.training.folds import FoldSplit, read_folds

DEFAULT_TRACKERS = ("pixtrack", "pixtrack-plus", "pixtrack-1stage", "pixtrack-fcn", "pixtrack-static")
DEFAULT_LENGTHS = (20, 40, 80)
FCN_PLACEHOLDER = "{fcn}"


@dataclass(frozen=True)
class FoldPlan:
    """Where fold `index`'s models and tables go, and the commands that make them."""

    index: int
    test: tuple[str, ...]
    fcn_checkpoint: Path
    two_stage_checkpoint: Path
    tables: Path
    train_fcn: tuple[str, ...]
    train_two_stage: tuple[str, ...]
    evaluate: tuple[str, ...]


def plan_folds(split: FoldSplit, indices: Sequence[int], *, dataset: str, folds_file: str, out: Path,
               config: str, trackers: Sequence[str], lengths: Sequence[int], tables: Sequence[int],
               fcn_args: Sequence[str], iterative_args: Sequence[str], python: str = sys.executable,
               workers: int = 1, recipe: str | None = None, evaluation: Sequence[str] = (),
               clips: int = 0) -> list[FoldPlan]:
    """The commands of every fold in `indices`; nothing runs. With a `recipe`, the training data
    and settings are the recipe's (`--data` would add to its data) and the two-stage run starts
    from the fold's FCN. `evaluation`: more arguments for each tables step (`--cache`, `--threads`);
    `clips`: the pixel AUC over that many clips of the fold's sequences too."""
    plans = []
    for index in indices:
        fold = split.fold(index)
        root = out / f"fold-{index}"
        fcn = root / "fcn" / f"fcn-{config}.safetensors"
        two_stage = root / "two-stage" / f"two-stage-{config}.safetensors"
        data = ["--recipe", recipe] if recipe is not None else ["--data", dataset]
        common = [*data, "--folds", folds_file, "--fold", str(index), "--config", config]
        own_fcn = ["--local-init", str(fcn)] if recipe is not None else []
        train_fcn = [python, "-m", "tracker.cli", "train", "fcn", *common, "--out", str(root / "fcn"),
                     "--output", str(fcn), *fcn_args]
        train_two_stage = [python, "-m", "tracker.cli", "train", "iterative", *common, "--out", str(root / "two-stage"),
                           *own_fcn, *(arg.replace(FCN_PLACEHOLDER, str(fcn)) for arg in iterative_args)]
        plans.append(FoldPlan(index, fold.test, fcn, two_stage, out / "tables" / f"fold-{index}",
                              tuple(train_fcn), tuple(train_two_stage),
                              tuple(tables_command(dataset, fold.test, trackers, lengths, tables,
                                                   {"two-stage": two_stage, "fcn": fcn},
                                                   out / "tables" / f"fold-{index}", python, workers,
                                                   [*evaluation, *(["--clips", str(clips)] if clips else [])]))))
    return plans


def tables_command(dataset: str, sequences: Sequence[str], trackers: Sequence[str], lengths: Sequence[int],
                   tables: Sequence[int], checkpoints: dict[str, Path], out: Path,
                   python: str = sys.executable, workers: int = 1, extra: Sequence[str] = ()) -> list[str]:
    """`python -m evaluation.tables` on `sequences`, each tracker with the checkpoint (file or
    k-fold map) of its registry entry's checkpoint kind in `checkpoints` (kind -> path), its
    runs `workers` at a time (evaluation.parallel), then `extra` arguments."""
    from tracker.registry import entry

    command = [python, "-m", "evaluation.tables", "--dataset", dataset, "--sequences", *sequences,
               "--trackers", *trackers, "--lengths", *map(str, lengths), "--tables", *map(str, tables),
               "--out", str(out), "--no-progress"]
    if workers > 1:
        command += ["--workers", str(workers)]
    for name in trackers:
        kind = entry(name).checkpoint_kind
        if kind in checkpoints:
            command += ["--checkpoint", f"{name}={checkpoints[kind]}"]
    return command + list(extra)


def write_checkpoint_map(path: Path, folds: Sequence[tuple[Sequence[str], Path]]) -> Path:
    """A k-fold checkpoint map (evaluation.protocols.load_checkpoint_map) of (test sequences,
    checkpoint) pairs, checkpoint paths relative to the map's folder."""
    entries = [{"test": list(test), "checkpoint": str(checkpoint.relative_to(path.parent))} for test, checkpoint in folds]
    path.write_text(json.dumps({"folds": entries}, indent=1) + "\n", encoding="utf-8")
    return path


def read_table_rows(folder: Path, tables: Sequence[int]) -> list[dict[str, str]]:
    """The rows of table<N>.csv files `evaluation.tables` wrote in `folder` (ours only)."""
    rows = []
    for table in tables:
        path = folder / f"table{table}.csv"
        if not path.is_file():
            raise FileNotFoundError(f"{path} is missing: the evaluation of {folder.name} did not finish")
        with path.open(newline="", encoding="utf-8") as handle:
            rows += [row for row in csv.DictReader(handle) if row.get("source", "ours") == "ours"]
    return rows


def evaluated_earlier(plan: FoldPlan, tables: Sequence[int], trackers: Sequence[str], needs_fcn: bool,
                      needs_two_stage: bool) -> bool:
    """Whether an earlier run left fold `plan`'s tables, with a row of every tracker asked for,
    and the checkpoints they were made with are still there."""
    if (needs_fcn and not plan.fcn_checkpoint.is_file()) or (needs_two_stage and not plan.two_stage_checkpoint.is_file()):
        return False
    try:
        rows = read_table_rows(plan.tables, tables)
    except FileNotFoundError:
        return False
    return set(trackers) <= {row.get("tracker") for row in rows}


def read_auc_rows(folder: Path) -> dict[str, float]:
    """Tracker -> pixel ROC AUC from the auc.csv `evaluation.tables --clips` wrote in `folder`."""
    path = folder / "auc.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: the clips of {folder.name} were not scored")
    with path.open(newline="", encoding="utf-8") as handle:
        return {row["tracker"]: float(row["auc"]) for row in csv.DictReader(handle)}


def write_auc_summary(out: Path, per_fold: dict[str, dict[str, float]], clips: int) -> str:
    """Write OUT/cross_validation_auc.csv (fold, tracker, auc; fold `mean` = the mean of the
    folds that scored the tracker); returns its Markdown table (trackers x folds)."""
    trackers = list(dict.fromkeys(name for scores in per_fold.values() for name in scores))
    means = {name: sum(s[name] for s in per_fold.values() if name in s) / sum(name in s for s in per_fold.values())
             for name in trackers}
    path = out / "cross_validation_auc.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["fold", "tracker", "auc"])
        for fold, scores in per_fold.items():
            writer.writerows([fold, name, repr(auc)] for name, auc in scores.items())
        writer.writerows(["mean", name, repr(means[name])] for name in trackers)
    lines = [f"**Pixel ROC AUC** over {clips} clips a fold (ground-truth ROIs, as Fig. 4)", "",
             "| tracker | " + " | ".join(f"fold {fold}" for fold in per_fold) + " | mean of folds |",
             "|---|" + "---:|" * (len(per_fold) + 1)]
    for name in trackers:
        cells = [f"{per_fold[fold][name]:.4f}" if name in per_fold[fold] else "" for fold in per_fold]
        lines.append(f"| {name} | " + " | ".join(cells) + f" | {means[name]:.4f} |")
    return "\n".join(lines) + "\n"


def write_summary(out: Path, per_fold: dict[str, list[dict[str, str]]], lengths: Sequence[int],
                  auc: str = "") -> tuple[Path, Path]:
    """OUT/cross_validation.csv and .md (Markdown): one row per fold, table, threshold and
    tracker, folds in the order of `per_fold` (fold name -> `read_table_rows`). Where the
    tables carry bootstrap intervals (`ci_low_<L>`, `ci_high_<L>`), so do both files. `auc`:
    Markdown (`write_auc_summary`) appended to the .md."""
    bounds = [f"ci_{side}_{n}" for n in lengths for side in ("low", "high")]
    has_bounds = any(row.get(bound) for rows in per_fold.values() for row in rows for bound in bounds)
    fields = ["fold", "table", "threshold", "tracker", *map(str, lengths), *(bounds if has_bounds else [])]
    summary = [{"fold": fold, **{field: row.get(field, "") for field in fields[1:]}}
               for fold, rows in per_fold.items() for row in rows]
    csv_path, md_path = out / "cross_validation.csv", out / "cross_validation.md"
    with csv_path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(summary)
    shown = fields[: 4 + len(lengths)]
    lines = ["| " + " | ".join(shown) + " |", "|" + "---|" * 4 + "---:|" * len(lengths)]
    for row in summary:
        cells = [row[f] for f in fields[:4]] + [_with_interval(row, n) for n in lengths]
        lines.append("| " + " | ".join(cells) + " |")
    if has_bounds:
        lines += ["", "[low, high]: 95% bootstrap interval of the mean over each fold's sequences (evaluation.bootstrap)"]
    if auc:
        lines += ["", auc.rstrip("\n")]
    md_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return csv_path, md_path


def _with_interval(row: dict[str, str], length: int) -> str:
    cell = _short(row[str(length)])
    low, high = row.get(f"ci_low_{length}", ""), row.get(f"ci_high_{length}", "")
    return f"{cell} {format_interval(float(low), float(high))}" if low and high else cell


def _short(cell: str) -> str:
    try:
        return f"{float(cell):.4f}"
    except ValueError:
        return cell


def run_step(command: Sequence[str], what: str, dry_run: bool, log: Path | None = None) -> None:
    """Run one stage's command in the foreground (its output appended to `log` where given), or
    only print it."""
    print(f"\n[{what}] $ {shlex.join(command)}" + (f"\n[{what}] output: {log}" if log else ""), flush=True)
    if dry_run:
        return
    started = time.monotonic()
    if log is None:
        result = subprocess.run(list(command))
    else:
        log.parent.mkdir(parents=True, exist_ok=True)
        with log.open("a", encoding="utf-8") as handle:
            result = subprocess.run(list(command), stdout=handle, stderr=subprocess.STDOUT)
    if result.returncode != 0:
        where = f" (its output: {log})" if log else ""
        raise RuntimeError(f"{what} failed (exit status {result.returncode}){where}; rerun it with:\n  "
                           f"{shlex.join(command)}")
    print(f"[{what}] done in {time.monotonic() - started:.0f} s", flush=True)


@dataclass(frozen=True)
class TrainingJob:
    """One training command of fold `fold`, done once every file of `outputs` exists, started
    once the jobs of the same fold named in `after` are done."""

    fold: int
    name: str
    command: tuple[str, ...]
    outputs: tuple[Path, ...]
    after: tuple[str, ...] = ()
    log_name: str = "train.log"

    @property
    def done(self) -> bool:
        return all(path.is_file() for path in self.outputs)


SPLIT_STEPS = (("split", ("split",)), ("step 1", ("local-1", "local-2")), ("step 2", ("global-gt",)))
"""The jobs a fold's two-stage run is split into before the rest: `split` first (it also writes
the run's record and synthetic data, which the two side-by-side processes then only read)."""


def training_jobs(plan: FoldPlan, needs_fcn: bool, needs_two_stage: bool, split_steps: bool) -> list[TrainingJob]:
    """What fold `plan` lacks: its FCN, then its two-stage model (which may start from it). With
    `split_steps`, the two-stage run is `split`, then Sec. 5.1 steps 1 and 2 as two jobs that may
    run side by side (step 2 needs neither step 1 nor the FCN; `pixtrack train iterative
    --stages`), then a job for the rest."""
    jobs = [TrainingJob(plan.index, "FCN", plan.train_fcn, (plan.fcn_checkpoint,), log_name="train-fcn.log")] if needs_fcn else []
    if needs_two_stage and not plan.two_stage_checkpoint.is_file():
        fcn = ("FCN",) if needs_fcn else ()
        if split_steps:
            from tracker.training.iterative import STAGE_BY_NAME

            folder = plan.two_stage_checkpoint.parent
            after = {"split": (), "step 1": ("two-stage split", *fcn), "step 2": ("two-stage split",)}
            jobs += [TrainingJob(plan.index, f"two-stage {name}", (*plan.train_two_stage, "--stages", *stages),
                                 tuple(folder / STAGE_BY_NAME[stage].output for stage in stages), after[name],
                                 f"train-{name.replace(' ', '-')}.log") for name, stages in SPLIT_STEPS]
            jobs.append(TrainingJob(plan.index, "two-stage", plan.train_two_stage, (plan.two_stage_checkpoint,),
                                    ("two-stage step 1", "two-stage step 2", *fcn)))
        else:
            jobs.append(TrainingJob(plan.index, "two-stage", plan.train_two_stage, (plan.two_stage_checkpoint,), fcn))
    return jobs


def train_folds(plans: Sequence[FoldPlan], needs_fcn: bool, needs_two_stage: bool, dry_run: bool,
                workers: int = 1) -> dict[int, str]:
    """Train every fold of `plans`; returns the failed folds' errors by index, after the others
    finish. With `workers` > 1 every fold's split (seconds) runs first, one after another, then
    that many jobs (`training_jobs`, steps 1 and 2 apart) run side by side, the earliest fold's
    ready job first, so that a fold's steps 1 and 2 start together; each job's output goes to
    OUT/fold-I/train*.log; a failed job's fold starts nothing more."""
    split_steps = workers > 1
    jobs = [job for plan in plans for job in training_jobs(plan, needs_fcn, needs_two_stage, split_steps)]
    finished = {(job.fold, job.name) for job in jobs if job.done}
    pending = [job for job in jobs if (job.fold, job.name) not in finished]
    failed: dict[int, str] = {}
    plans_by_fold = {plan.index: plan for plan in plans}

    def log(job: TrainingJob) -> Path | None:
        return plans_by_fold[job.fold].two_stage_checkpoint.parents[1] / job.log_name if split_steps else None

    def ready(job: TrainingJob) -> bool:
        return all((job.fold, name) in finished for name in job.after)

    def run_now(job: TrainingJob) -> None:
        try:
            run_step(job.command, f"fold {job.fold}: {job.name}", dry_run, log(job))
            finished.add((job.fold, job.name))
        except RuntimeError as error:
            failed.setdefault(job.fold, str(error))

    if not split_steps or dry_run:
        for job in pending:
            if job.fold not in failed:
                run_now(job)
        return failed
    for job in [job for job in pending if job.name == "two-stage split"]:
        pending.remove(job)
        run_now(job)
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    running: dict = {}
    with ThreadPoolExecutor(max_workers=workers) as pool:
        while True:
            pending = [job for job in pending if job.fold not in failed]
            for job in [job for job in pending if ready(job)][: workers - len(running)]:
                pending.remove(job)
                running[pool.submit(run_step, job.command, f"fold {job.fold}: {job.name}", False, log(job))] = job
            if not running:
                return failed
            for future in wait(running, return_when=FIRST_COMPLETED).done:
                job = running.pop(future)
                try:
                    future.result()
                    finished.add((job.fold, job.name))
                except RuntimeError as error:
                    failed.setdefault(job.fold, str(error))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m evaluation.cross_validation",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", required=True, help="DAVIS root or VOT sequences folder (training and test)")
    parser.add_argument("--folds", required=True, help="folds file (`pixtrack train folds`)")
    parser.add_argument("--out", type=Path, required=True, help="folder for every fold's models, tables and the summary")
    parser.add_argument("--fold-indices", type=int, nargs="+", help="only these folds (default: all)")
    parser.add_argument("--config", default="lite", help="model configuration of both trainings (default: lite)")
    parser.add_argument("--trackers", nargs="+", default=list(DEFAULT_TRACKERS),
                        help=f"trackers to evaluate (default: {' '.join(DEFAULT_TRACKERS)})")
    parser.add_argument("--lengths", type=int, nargs="+", default=list(DEFAULT_LENGTHS),
                        help=f"sequence lengths (default: {' '.join(map(str, DEFAULT_LENGTHS))})")
    parser.add_argument("--tables", type=int, nargs="+", choices=(2, 3), default=[3],
                        help="which of the paper's tables (default: 3, full tracking)")
    parser.add_argument("--recipe", default=None, metavar="FILE",
                        help="train with this recipe's [fcn] and [iterative] tables (its data and settings); "
                             "each fold's two-stage run starts from the fold's FCN")
    parser.add_argument("--fcn-args", default="", help="more arguments for `pixtrack train fcn` (one quoted string)")
    parser.add_argument("--iterative-args", default="",
                        help="more arguments for `pixtrack train iterative`; {fcn} = the fold's FCN checkpoint")
    stop = parser.add_mutually_exclusive_group()
    stop.add_argument("--evaluate-only", action="store_true", help="train nothing: evaluate the checkpoints in --out")
    stop.add_argument("--train-only", action="store_true", help="train each fold's checkpoints, evaluate nothing")
    parser.add_argument("--train-workers", type=int, default=1, metavar="N",
                        help="run N training jobs side by side, one process each: folds, and each fold's "
                             "Sec. 5.1 steps 1 and 2 (default 1: one command after another)")
    parser.add_argument("--dry-run", action="store_true", help="print the commands, run none")
    parser.add_argument("--workers", type=int, default=1, metavar="N",
                        help="each tables step tracks N runs at a time (evaluation.parallel; default 1)")
    parser.add_argument("--threads", type=int, default=None, metavar="N",
                        help="torch threads of each tables step (default: torch's choice)")
    parser.add_argument("--cache", type=Path, default=None, metavar="DIR",
                        help="run cache of the tables steps (default: evaluation.tables' own)")
    parser.add_argument("--clips", type=int, default=0, metavar="N",
                        help="also the pixel ROC AUC over N clips of each fold's sequences, and its mean over folds")
    args = parser.parse_args(argv)
    if args.clips < 0:
        parser.error(f"--clips must be 0 (no AUC) or more, got {args.clips}")
    from tracker.registry import entry

    evaluation = [*(["--cache", str(args.cache)] if args.cache else []),
                  *(["--threads", str(args.threads)] if args.threads else [])]
    split = read_folds(args.folds)
    indices = args.fold_indices if args.fold_indices is not None else list(range(split.k))
    for index in indices:
        split.fold(index)  # a clear error for a fold that does not exist, before anything runs
    args.out.mkdir(parents=True, exist_ok=True)
    every_plan = plan_folds(split, range(split.k), dataset=args.dataset, folds_file=args.folds, out=args.out,
                            config=args.config, trackers=args.trackers, lengths=args.lengths, tables=args.tables,
                            fcn_args=shlex.split(args.fcn_args), iterative_args=shlex.split(args.iterative_args),
                            workers=args.workers, recipe=args.recipe, evaluation=evaluation, clips=args.clips)
    plans = [plan for plan in every_plan if plan.index in indices]
    kinds = {entry(name).checkpoint_kind for name in args.trackers}  # an unknown name fails here, listing the known
    needs_fcn = "fcn" in kinds or FCN_PLACEHOLDER in args.iterative_args or args.recipe is not None
    needs_two_stage = "two-stage" in kinds

    failed: list[str] = []
    if not args.evaluate_only:
        for index, error in train_folds(plans, needs_fcn, needs_two_stage, args.dry_run, args.train_workers).items():
            print(f"error: {error}", file=sys.stderr, flush=True)
            failed.append(str(index))
    per_fold: dict[str, list[dict[str, str]]] = {}
    auc_per_fold: dict[str, dict[str, float]] = {}
    for plan in plans:
        if args.train_only or str(plan.index) in failed:
            continue
        try:
            if not args.dry_run:
                wanted = [(needs_fcn, plan.fcn_checkpoint, plan.train_fcn),
                          (needs_two_stage, plan.two_stage_checkpoint, plan.train_two_stage)]
                for needed, checkpoint, command in wanted:
                    if needed and not checkpoint.is_file():
                        raise FileNotFoundError(f"fold {plan.index}: no checkpoint {checkpoint}; it is made by:\n  "
                                                f"{shlex.join(command)}")
            run_step(plan.evaluate, f"fold {plan.index}: tables", args.dry_run)
            if not args.dry_run:
                per_fold[str(plan.index)] = read_table_rows(plan.tables, args.tables)
                if args.clips:
                    auc_per_fold[str(plan.index)] = read_auc_rows(plan.tables)
        except (RuntimeError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            failed.append(str(plan.index))

    if per_fold and not args.dry_run:
        # Folds evaluated by an earlier run into the same OUT stay in the summary and the
        # all-folds tables (their runs are cached), so evaluating folds piece by piece works.
        earlier = [plan for plan in every_plan if plan.index not in indices
                   and evaluated_earlier(plan, args.tables, args.trackers, needs_fcn, needs_two_stage)]
        for plan in earlier:
            per_fold[str(plan.index)] = read_table_rows(plan.tables, args.tables)
            if args.clips and (plan.tables / "auc.csv").is_file():
                auc_per_fold[str(plan.index)] = read_auc_rows(plan.tables)
        if earlier:
            print(f"note: the summary also holds folds {', '.join(str(plan.index) for plan in earlier)}, "
                  f"evaluated earlier into {args.out}", file=sys.stderr)
        per_fold = {key: per_fold[key] for key in sorted(per_fold, key=int)}
        auc_per_fold = {key: auc_per_fold[key] for key in sorted(auc_per_fold, key=int)}
    done = [plan for plan in every_plan if str(plan.index) in per_fold]
    if len(done) > 1:
        maps: dict[str, Path] = {}
        if needs_two_stage:
            two_stage = [(plan.test, plan.two_stage_checkpoint) for plan in done]
            maps["two-stage"] = write_checkpoint_map(args.out / "two-stage.json", two_stage)
        if needs_fcn:
            maps["fcn"] = write_checkpoint_map(args.out / "fcn.json", [(plan.test, plan.fcn_checkpoint) for plan in done])
        everything = [name for plan in done for name in plan.test]
        try:
            run_step(tables_command(args.dataset, everything, args.trackers, args.lengths, args.tables, maps,
                                    args.out / "tables" / "all", workers=args.workers, extra=evaluation),
                     "all folds: tables", False)
            per_fold["all"] = read_table_rows(args.out / "tables" / "all", args.tables)
        except (RuntimeError, FileNotFoundError) as error:
            print(f"error: {error}", file=sys.stderr, flush=True)
            failed.append("all")
    if per_fold:
        (args.out / "cross_validation_auc.csv").unlink(missing_ok=True)  # no stale AUC beside new tables
        auc = write_auc_summary(args.out, auc_per_fold, args.clips) if auc_per_fold else ""
        csv_path, md_path = write_summary(args.out, per_fold, args.lengths, auc)
        print("\n" + md_path.read_text(encoding="utf-8") + f"\nwrote {csv_path} and {md_path}")
    if failed:
        print(f"error: folds not finished: {', '.join(failed)} (rerun the same command: finished work is kept)",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
