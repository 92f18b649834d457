#!/usr/bin/env bash
# Create (once) and print the path of a virtual environment for one dependency stack:
#   latest: newest stable-baselines3 and gymnasium (default)
#   compat: imitation 1.0.1 with its stable-baselines3 2.2.1 and gymnasium 0.29.1
# torch is pinned to a CPU build that installs quickly; the package accepts any torch >= 2.0.
set -euo pipefail
stack="${GAIL_STACK:-latest}"
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-$stack"
python="${PYTHON:-python3}"
case "$stack" in
  latest) deps=(torch==2.13.0 stable-baselines3 gymnasium) ;;
  compat) deps=(torch==2.13.0 imitation==1.0.1 stable-baselines3==2.2.1 gymnasium==0.29.1) ;;
  *) echo "unknown GAIL_STACK=$stack (expected latest or compat)" >&2; exit 2 ;;
esac
if [ ! -f "$venv/.installed" ]; then
  echo "Setting up $venv ($stack stack) ..." >&2
  "$python" -m venv "$venv"
  "$venv/bin/python" -m pip install -q --upgrade pip >&2
  "$venv/bin/python" -m pip install -q "${deps[@]}" pytest tqdm rich ruff mypy >&2
  "$venv/bin/python" -m pip install -q --no-deps -e "$root" >&2
  touch "$venv/.installed"
fi
echo "$venv"
