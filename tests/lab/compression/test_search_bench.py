"""``rt3lab bench search``: the JSON document, equal evaluations, the baselines' searches."""

import json

import pytest

from lab.cli import main
from lab.compression.search.controller import SearchSpace
from lab.compression.search.methods import evolutionary_search, random_search
from lab.compression.search.reinforce import Outcome


def test_bench_search_json(wiki_dir, capsys):
    with pytest.raises(SystemExit) as exc:
        main(
            ["bench", "search", "--budget", "test", "--seeds", "2", "--json", "--data",
             f"wikitext2:{wiki_dir}", "--deadlines", "profile"]
        )  # fmt: skip
    assert exc.value.code in (0, None)
    doc = json.loads(capsys.readouterr().out)
    assert set(doc["methods"]) == {"rl", "random", "evolution"}
    assert doc["evaluations_per_method"] == 3  # the test budget's episodes
    for r in doc["methods"].values():
        # Evaluations are counted at the evaluator for every seed, apart from what was asked.
        assert [s["evaluations"] for s in r["per_seed"]] == [3, 3]
        assert r["evaluations"] == 3
        # The interval is the 2-seed t-interval of the per-seed best rewards: centred on
        # their mean, half-width t(0.975, 1) x s / sqrt(2) = 12.706 x |a - b| / 2.
        a, b = (s["best_reward"] for s in r["per_seed"])
        lo, hi = r["best_reward_ci95"]
        assert r["best_reward"] == pytest.approx((a + b) / 2)
        assert (lo + hi) / 2 == pytest.approx((a + b) / 2, abs=1e-6)
        assert hi - lo == pytest.approx(12.706 * abs(a - b), abs=2e-6)
        assert len(r["reward_by_quartile"]) == 4 and len(r["per_seed"]) == 2
        assert 0.0 <= r["all_deadlines_met"] <= 1.0
    assert len(doc["load_average"]) == 3


def test_baselines_spend_exactly_n_evaluations_and_evolution_exploits():
    """On a reward that counts candidate-0 choices, evolution's last quarter beats its
    first, and random search's does not trend; both evaluate exactly n children."""
    space = SearchSpace(layers=("a", "b", "c"), n_levels=5, n_sets=3, slots=4, n_candidates=10)
    calls = []

    def evaluate(child, episode):
        calls.append(episode)
        r = sum(c == 0 for s in child.choices for layer in s for c in layer)
        return Outcome(float(r))

    evo = evolutionary_search(space, evaluate, 200, seed=0)
    assert len(evo) == 200 and len(calls) == 200
    rewards = [o.reward for _, o in evo]
    assert sum(rewards[-50:]) / 50 > sum(rewards[:50]) / 50 + 2
    calls.clear()
    rnd = random_search(space, evaluate, 120, seed=1)
    assert len(rnd) == 120 and calls == list(range(120))
    assert all(c.levels in space.combos for c, _ in rnd)


@pytest.mark.slow  # 300 controller episodes: ~20 s quiet, about a minute at load 7
def test_rl_learns_a_noise_free_reward_within_the_quick_budget():
    """REINFORCE over the compress search space (6 layers, 3 sets, 4 slots: 72 pattern
    choices) at the quick budget's 100 episodes: on a reward counting candidate-0 choices
    (at most 7.2; a random child scores 0.72 on average), the last quarter's mean reward is
    at least 80 % of the maximum for every seed tried. Random search, the control, stays far
    below that: a controller that did not learn fails here, not by chance."""
    from lab.compression.budget import QUICK
    from lab.compression.search.reinforce import Search, SearchConfig

    space = SearchSpace(layers=tuple("abcdef"), n_levels=10, n_sets=3, slots=4, n_candidates=10)
    best = len(space.layers) * 3 * 4 / 10

    def evaluate(child, episode):
        return Outcome(sum(c == 0 for s in child.choices for layer in s for c in layer) / 10)

    def last_quarter(rewards):
        n = len(rewards) // 4
        return sum(rewards[-n:]) / n

    for seed in (0, 1, 2):
        log = Search(space, SearchConfig(seed=seed), None).run(evaluate, QUICK.episodes).log
        assert last_quarter([e["reward"] for e in log]) >= 0.8 * best, seed
        control = random_search(space, evaluate, QUICK.episodes, seed=seed)
        assert last_quarter([o.reward for _, o in control]) < 0.3 * best, seed
