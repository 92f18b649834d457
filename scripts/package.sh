#!/usr/bin/env bash
# Build the wheel and the sdist, check them with twine, install the built wheel (not the source tree)
# into a fresh virtual environment with torch 2.13.0 (CPU build, as scripts/setup.sh installs it), and
# run an import and a short GAIL-DQN run there (scripts/wheel_smoke.py), then install the extras and import what
# they serve.
#   bash scripts/package.sh              # into dist/
#   bash scripts/package.sh /tmp/dist    # anywhere else
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(bash "$root/scripts/setup.sh")"
dist="$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)"
python="${PYTHON:-python3}"
cd "$root"
rm -f "$dist"/sb3_gail_plugin-*
"$venv/bin/python" -m build --outdir "$dist" . > "$dist/build.log" 2>&1 || { tail -40 "$dist/build.log"; exit 1; }
"$venv/bin/python" -m twine check --strict "$dist"/sb3_gail_plugin-*
wheel="$(ls "$dist"/sb3_gail_plugin-*.whl)"

fresh="$(mktemp -d)"
trap 'rm -rf "$fresh"' EXIT
echo "Installing $(basename "$wheel") into a fresh virtual environment ..."
"$python" -m venv "$fresh/venv"
"$fresh/venv/bin/python" -m pip install --quiet torch==2.13.0 "$wheel" > "$fresh/pip.log" 2>&1 ||
  { tail -40 "$fresh/pip.log"; exit 1; }
# run from outside the source tree, so that only the installed wheel can be imported
cd "$fresh"
"$fresh/venv/bin/python" "$root/scripts/wheel_smoke.py"
# the extras install what they say: the modules they serve import from the wheel ([imitation] pins SB3 2.2.1
# and is checked by the compat stack instead)
echo "Installing the extras [zoo,minari,optuna,docs] from the wheel ..."
"$fresh/venv/bin/python" -m pip install --quiet "$wheel[zoo,minari,optuna,docs]" > "$fresh/pip-extras.log" 2>&1 ||
  { tail -40 "$fresh/pip-extras.log"; exit 1; }
"$fresh/venv/bin/python" -c "
import sphinx, myst_parser, minari, h5py
import sb3_gail_plugin.zoo.dqn, sb3_gail_plugin.zoo.ppo, sb3_gail_plugin.tune, sb3_gail_plugin.minari_datasets
print('extras: zoo, minari, optuna and docs import from the wheel')
"
