#!/usr/bin/env bash
# The README's main job, on a fresh clone: sets up ./.venv once (scripts/setup_env.sh), then
# runs evaluation/main_job.py from the repository root: the synthetic benchmark into
# workspace/sequences (where it holds none), `vot evaluate` of the trackers, `vot analysis`,
# `vot report --format html`, and the paper's tables. Arguments go to the main job
# (e.g. `bash scripts/main.sh --trackers pixtrack-static --sequences 2`; see --help).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m evaluation.main_job "$@"
