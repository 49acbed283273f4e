#!/usr/bin/env bash
# The whole test suite, on a fresh clone: sets up ./.venv once (scripts/setup_env.sh), then
# runs pytest. Extra arguments go to pytest (e.g. `bash scripts/test.sh -k roi -x`).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
bash "$root/scripts/setup_env.sh"
cd "$root"
exec "$root/.venv/bin/python" -m pytest "$@"
