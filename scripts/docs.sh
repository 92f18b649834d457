#!/usr/bin/env bash
# Build the documentation site (Sphinx + MyST, warnings as errors) on the latest stack:
#   bash scripts/docs.sh                 # into docs/_build/html
#   bash scripts/docs.sh /tmp/site       # anywhere else
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(bash "$root/scripts/setup.sh")"
out="${1:-$root/docs/_build/html}"
cd "$root"
"$venv/bin/python" -m sphinx -W --keep-going -q -b html docs "$out"
echo "Documentation: $out/index.html"
