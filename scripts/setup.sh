#!/usr/bin/env bash
# Create (once) and print the path of a virtual environment for one dependency stack:
#   latest: newest stable-baselines3 and gymnasium (default), with tensorboard and minari (HDF5 storage; its
#           "create" extra, jax, for minari.DataCollector in the tests)
#   compat: imitation 1.0.1 with its stable-baselines3 2.2.1 and gymnasium 0.29.1
# torch is pinned to 2.13.0; this machine's package registry serves its CPU build (elsewhere, point pip at
# https://download.pytorch.org/whl/cpu with PIP_EXTRA_INDEX_URL to avoid the CUDA build). The package accepts any torch >= 2.0.
set -euo pipefail
stack="${GAIL_STACK:-latest}"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-$stack"
python="${PYTHON:-python3}"
case "$stack" in
  # the latest stack also builds the documentation site and the package (scripts/docs.sh, scripts/package.sh)
  latest) deps=(torch==2.13.0 stable-baselines3 sb3-contrib gymnasium "rl_zoo3>=2.9" pandas matplotlib optuna tensorboard "minari[hdf5,create]" sphinx myst-parser sphinx-rtd-theme build twine) ;;
  compat) deps=(torch==2.13.0 imitation==1.0.1 stable-baselines3==2.2.1 sb3-contrib==2.2.1 gymnasium==0.29.1) ;;
  *) echo "unknown GAIL_STACK=$stack (expected latest or compat)" >&2; exit 2 ;;
esac
# the marker holds the dependency list it was made with: a venv made before a dependency was added gets it
wanted="${deps[*]} pytest tqdm rich ruff mypy"
if [ ! -f "$venv/.installed" ] || [ "$(cat "$venv/.installed")" != "$wanted" ]; then
  echo "Setting up $venv ($stack stack), log in $venv.log ..." >&2
  {
    { [ -x "$venv/bin/python" ] || "$python" -m venv "$venv"; } &&
    "$venv/bin/python" -m pip install --upgrade pip &&
    "$venv/bin/python" -m pip install "${deps[@]}" pytest tqdm rich ruff mypy &&
    "$venv/bin/python" -m pip install --no-deps -e "$root"
  } > "$venv.log" 2>&1 || { tail -40 "$venv.log" >&2; echo "set-up failed, see $venv.log" >&2; exit 1; }
  echo "$wanted" > "$venv/.installed"
fi
echo "$venv"
