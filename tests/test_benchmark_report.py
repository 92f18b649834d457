"""The benchmark report's figures: when a run first reaches 95 % of expert return, and whether it held."""

import numpy as np

from benchmarks.report import first_reach, markdown_tables, summarize_run


def _records(returns, every=5000, seconds_per_step=0.001):
    return [
        dict(env_steps=str((i + 1) * every), wall_s=str((i + 1) * every * seconds_per_step), mean_return=str(r))
        for i, r in enumerate(returns)
    ]


def test_first_reach_needs_the_next_evaluation_too():
    assert first_reach(_records([100, 480, 300, 480, 490, 200]), 475) == 3
    assert first_reach(_records([100, 480]), 475) is None  # the last evaluation has no next one
    assert first_reach(_records([100, 200]), 475) is None


def test_summarize_run():
    summary = summarize_run(_records([100, 480, 300, 480, 490, 460, 500]), expert_return=500)
    assert summary["steps_to_95"] == 20000 and summary["wall_to_95"] == 20.0
    assert summary["min_after_95"] == 460 and summary["final_return"] == 500
    assert summary["steps_per_s"] == 1000
    never = summarize_run(_records([1, 2, 3]), expert_return=500)
    assert np.isnan(never["steps_to_95"]) and np.isnan(never["min_after_95"])


def test_markdown_table_medians_and_held_count():
    rows = []
    for seed, returns in enumerate([[500, 500, 500], [100, 500, 500], [500, 500, 300]]):
        for record in _records(returns):
            rows.append(dict(record, env="CartPole-v1", n_demos="10", method="ours", seed=str(seed), expert_return="500"))
    table = markdown_tables(rows)
    assert "| ours | 3 | 5,000 |" in table  # median of 5k, 10k and 5k
    assert "| 2/3 |" in table  # seed 2 fell to 300 < 450 after reaching 95 %
