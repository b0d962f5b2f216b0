"""The RL search: REINFORCE learns, and an interrupted search resumes to the same end state."""

import json

import pytest
import torch

from lab.compression.search.controller import Child, SearchSpace
from lab.compression.search.reinforce import Outcome, Search, SearchConfig
from lab.compression.sparsifier import CompressionError

SPACE = SearchSpace(layers=("a", "b"), n_levels=5, n_sets=3, slots=2, n_candidates=4)


def evaluate(child: Child, episode: int) -> Outcome:
    # prefers candidate 3 everywhere and the sparsest level combination
    hits = sum(c == 3 for s in child.choices for layer in s for c in layer)
    return Outcome(hits / SPACE.n_pattern_decisions + sum(child.levels) / 12, {"hits": hits})


def _state(search: Search):
    return {k: v.clone() for k, v in search.controller.state_dict().items()}


def test_resume_after_interruption_equals_uninterrupted(tmp_path):
    full = Search(SPACE, SearchConfig(seed=3), tmp_path / "full")
    r_full = full.run(evaluate, episodes=7)

    part = Search(SPACE, SearchConfig(seed=3), tmp_path / "part")
    part.run(evaluate, episodes=7, stop_after=3)  # interrupted after 3 episodes
    assert part.episodes_done == 3
    resumed = Search(SPACE, SearchConfig(seed=3), tmp_path / "part")  # a new process
    assert resumed.episodes_done == 3
    r_res = resumed.run(evaluate, episodes=7)

    assert r_res.log == r_full.log
    assert r_res.best == r_full.best
    assert r_res.baseline == r_full.baseline
    for k, v in _state(full).items():
        assert torch.equal(v, _state(resumed)[k]), k
    # optimizer state also survived: one more episode stays identical
    assert full.run(evaluate, 8).log == resumed.run(evaluate, 8).log


def test_state_is_json_and_safetensors_only(tmp_path):
    Search(SPACE, SearchConfig(seed=0), tmp_path).run(evaluate, episodes=2)
    files = sorted(p.name for p in tmp_path.iterdir())
    assert files == ["search.json", "state-00002.safetensors"]
    doc = json.loads((tmp_path / "search.json").read_text())
    assert doc["episodes_done"] == 2 and len(doc["log"]) == 2


def test_resume_refuses_a_different_search(tmp_path):
    Search(SPACE, SearchConfig(seed=0), tmp_path).run(evaluate, episodes=1)
    with pytest.raises(CompressionError, match="different search space"):
        Search(SPACE, SearchConfig(seed=1), tmp_path)
    (tmp_path / "search.json").write_text("{not json")
    with pytest.raises(CompressionError, match="not valid JSON"):
        Search(SPACE, SearchConfig(seed=0), tmp_path)


def test_reinforce_improves_the_reward():
    search = Search(SPACE, SearchConfig(seed=0), None)
    result = search.run(evaluate, episodes=80)
    rewards = [e["reward"] for e in result.log]
    assert sum(rewards[-20:]) / 20 > sum(rewards[:20]) / 20 + 0.3


def test_child_decoding_round_trips():
    actions = [5, *list(range(SPACE.n_pattern_decisions))]
    actions = [actions[0]] + [a % SPACE.n_candidates for a in actions[1:]]
    child = Child.decode(SPACE, actions)
    assert child.levels == SPACE.combos[5]
    assert len(child.choices) == 3 and len(child.choices[0]) == 2 and len(child.choices[0][0]) == 2
    assert Child.from_dict(json.loads(json.dumps(child.to_dict()))) == child


def test_barred_level_combinations_are_never_sampled_and_resume_keeps_the_bar(tmp_path):
    allowed = (0, 4, 9)
    space = SearchSpace(
        layers=("a", "b"), n_levels=5, n_sets=3, slots=2, n_candidates=4, allowed=allowed
    )
    search = Search(space, SearchConfig(seed=2), tmp_path)
    result = search.run(evaluate, episodes=40)
    seen = {space.combos.index(tuple(e["child"]["levels"])) for e in result.log}
    assert seen <= set(allowed) and len(seen) > 1
    # the best allowed combination is the sparsest: REINFORCE still learns within the bar
    late = [tuple(e["child"]["levels"]) for e in result.log[-10:]]
    assert late.count(space.combos[9]) >= 5
    with pytest.raises(CompressionError, match="different search space"):
        Search(SPACE, SearchConfig(seed=2), tmp_path)  # same settings, no bar: refused


@pytest.mark.parametrize("allowed", [(), (-1,), (10,)])
def test_allowed_combinations_must_be_valid_indices(allowed):
    with pytest.raises(ValueError, match="allowed level combinations"):
        SearchSpace(layers=("a",), n_levels=5, n_sets=3, allowed=allowed)
