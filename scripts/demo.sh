#!/usr/bin/env bash
# Main job: train a PPO expert on CartPole-v1, record its demonstrations, train GAIL-DQN with
# the plugin and print the true return reached. Extra arguments go to the example script.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$(bash "$root/scripts/setup.sh")"
cd "$root"
"$venv/bin/python" examples/dqn_cartpole_gail.py "$@"
