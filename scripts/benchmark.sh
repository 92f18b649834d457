#!/usr/bin/env bash
# Run the comparison with imitation's GAIL on the compat stack (imitation 1.0.1 pins SB3 2.2.1).
#   bash scripts/benchmark.sh --quick                                   # smoke test, a few minutes
#   bash scripts/benchmark.sh --env CartPole-v1 --seeds 0 1 2 --n-demos 10
# GAIL_STACK=latest runs the methods that need no imitation on the latest stack (the -v5 MuJoCo envs):
#   GAIL_STACK=latest bash scripts/benchmark.sh --env Pendulum-v1 --methods ours_sac sac_true_reward
# Or, with --overhead first, GAIL's overhead against the same learners without it, on the latest stack
# (benchmarks/overhead_scaling.py: the ratios, and how they grow with n_envs, expert set and observation size):
#   bash scripts/benchmark.sh --overhead                                # every table, about an hour
#   bash scripts/benchmark.sh --overhead --quick                        # smoke test, about a minute
#   bash scripts/benchmark.sh --overhead --tables gradient_steps whole_loop
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [[ "${1:-}" == "--overhead" ]]; then
  shift
  venv="$(GAIL_STACK=latest bash "$root/scripts/setup.sh")"
  cd "$root"
  OMP_NUM_THREADS=1 exec "$venv/bin/python" -m benchmarks.overhead_scaling "$@"
fi
stack="${GAIL_STACK:-compat}"
venv="$(GAIL_STACK="$stack" bash "$root/scripts/setup.sh")"
cd "$root"
if [[ " $* " == *LunarLander* ]] && ! "$venv/bin/python" -c "import Box2D" 2>/dev/null; then
  echo "Installing box2d for LunarLander ..." >&2
  "$venv/bin/python" -m pip install --quiet box2d==2.3.10 >&2
fi
if [[ " $* " =~ (Hopper|InvertedDoublePendulum|HalfCheetah|Walker2d|Ant|Swimmer) ]] && ! "$venv/bin/python" -c "import mujoco" 2>/dev/null; then
  echo "Installing mujoco for the MuJoCo envs ..." >&2
  "$venv/bin/python" -m pip install --quiet mujoco imageio >&2
fi
"$venv/bin/python" -m benchmarks.compare "$@"
