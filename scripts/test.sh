#!/usr/bin/env bash
# Install one stack (GAIL_STACK=latest|compat, default latest) and run the checks and the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(bash "$root/scripts/setup.sh")"
cd "$root"
if [ "${GAIL_STACK:-latest}" = latest ]; then
  "$venv/bin/ruff" check sb3_gail_plugin tests examples benchmarks scripts docs
  "$venv/bin/mypy"
  # the ecosystem tests skip where their packages are missing: on this stack they must run, not skip
  "$venv/bin/python" -c "import rl_zoo3, optuna, minari, h5py, jax, tensorboard, sb3_contrib" ||
    { echo "the latest stack lacks a package its tests need: rm $venv/.installed and rerun" >&2; exit 1; }
fi
"$venv/bin/python" -m pytest "$@"
