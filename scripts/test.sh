#!/usr/bin/env bash
# Install one stack (GAIL_STACK=latest|compat, default latest) and run the checks and the tests.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(bash "$root/scripts/setup.sh")"
cd "$root"
if [ "${GAIL_STACK:-latest}" = latest ]; then
  "$venv/bin/ruff" check sb3_gail_plugin tests examples benchmarks scripts docs
  "$venv/bin/mypy"
fi
"$venv/bin/python" -m pytest "$@"
