"""The RL search: REINFORCE with a moving-average baseline, RMSProp, checkpointed every episode.

Every episode the controller samples a child, an evaluator (the pipeline's: estimate its
sets' latency, score them on the supernet, compute the reward) scores it, and the
controller takes one policy-gradient step ``-(R - b) log p(child)``; then ``b <- d b + (1 - d) R``.

State (controller weights, RMSProp state, baseline, the sampling RNG, the episode log and the
best child) is written after every episode to ``STATE_DIR/search.json`` plus one
safetensors file; no pickle. An interrupted search resumes from the last finished episode
and ends with exactly the state of an uninterrupted run with the same seed, provided the
evaluator is deterministic given ``(child, episode)`` (the pipeline's is: it seeds its own
RNG from the search seed and the episode).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lab.compression.search.controller import Child, SearchSpace, build_controller
from lab.compression.sparsifier import CompressionError

if TYPE_CHECKING:
    import torch

STATE_FORMAT = "rt3lab-search-state"


@dataclass(frozen=True)
class SearchConfig:
    """Controller optimisation settings."""

    seed: int = 0
    lr: float = 0.003
    baseline_decay: float = 0.8
    hidden: int = 35

    def to_dict(self) -> dict[str, Any]:
        """JSON form: every field."""
        return asdict(self)


@dataclass
class Outcome:
    """What the evaluator returns for one child."""

    reward: float
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass
class SearchResult:
    """The search's end state."""

    best: Child
    best_reward: float
    log: list[dict[str, Any]]
    baseline: float | None
    controller_state: dict[str, torch.Tensor]


Evaluator = Callable[[Child, int], Outcome]


def _flat_optimizer_state(opt: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for key, value in st.items():
            if hasattr(value, "shape"):
                tensors[f"opt.{pid}.{key}"] = value.detach().clone().contiguous()
            else:
                scalars[f"{pid}.{key}"] = value
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _restore_optimizer(opt: torch.optim.Optimizer, tensors: dict, meta: dict) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith("opt."):
            _, pid, key = name.split(".", 2)
            state.setdefault(int(pid), {})[key] = value
    for name, value in meta["scalars"].items():
        pid, key = name.split(".", 1)
        state.setdefault(int(pid), {})[key] = value
    opt.load_state_dict({"state": state, "param_groups": meta["param_groups"]})


class Search:
    """One RL search over ``space``, resumable from ``state_dir``."""

    def __init__(self, space: SearchSpace, config: SearchConfig, state_dir: Path | None) -> None:
        import torch

        self.space = space
        self.config = config
        self.state_dir = Path(state_dir) if state_dir is not None else None
        with torch.random.fork_rng():
            torch.manual_seed(config.seed)
            self.controller = build_controller(space, config.hidden)
        self.optimizer = torch.optim.RMSprop(self.controller.parameters(), lr=config.lr)
        self.generator = torch.Generator().manual_seed(config.seed)
        self.baseline: float | None = None
        self.log: list[dict[str, Any]] = []
        self.best: dict[str, Any] | None = None
        if self.state_dir is not None and (self.state_dir / "search.json").is_file():
            self._load()

    @property
    def episodes_done(self) -> int:
        """Finished episodes (including those restored from a checkpoint)."""
        return len(self.log)

    def _identity(self) -> dict[str, Any]:
        return {"space": self.space.signature(), "config": self.config.to_dict()}

    def _save(self) -> None:
        from safetensors.torch import save_file

        assert self.state_dir is not None
        self.state_dir.mkdir(parents=True, exist_ok=True)
        n = self.episodes_done
        tensors = {
            f"controller.{k}": v.detach().clone() for k, v in self.controller.state_dict().items()
        }
        opt_tensors, opt_meta = _flat_optimizer_state(self.optimizer)
        tensors.update(opt_tensors)
        tensors["rng"] = self.generator.get_state().clone()
        weights = f"state-{n:05d}.safetensors"
        save_file(tensors, str(self.state_dir / weights))
        doc = {
            "format": STATE_FORMAT,
            "identity": self._identity(),
            "weights": weights,
            "episodes_done": n,
            "baseline": self.baseline,
            "optimizer": opt_meta,
            "best": self.best,
            "log": self.log,
        }
        tmp = self.state_dir / "search.json.tmp"
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.state_dir / "search.json")  # atomic: the episode is committed
        for old in self.state_dir.glob("state-*.safetensors"):
            if old.name != weights:
                old.unlink()

    def _load(self) -> None:
        from safetensors.torch import load_file

        assert self.state_dir is not None
        path = self.state_dir / "search.json"
        try:
            doc = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise CompressionError(f"{path}: search state is not valid JSON: {exc}") from exc
        if doc.get("format") != STATE_FORMAT:
            raise CompressionError(f"{path}: field format is not {STATE_FORMAT!r}")
        if doc.get("identity") != json.loads(json.dumps(self._identity())):
            raise CompressionError(
                f"{path}: the saved search has a different search space or settings "
                "(seed, layers, levels, lr); use another --out or delete the state to restart"
            )
        weights = self.state_dir / doc["weights"]
        try:
            tensors = load_file(str(weights))
        except Exception as exc:
            raise CompressionError(f"{weights}: unreadable search state ({exc})") from exc
        self.controller.load_state_dict(
            {k[len("controller.") :]: v for k, v in tensors.items() if k.startswith("controller.")}
        )
        _restore_optimizer(self.optimizer, tensors, doc["optimizer"])
        self.generator.set_state(tensors["rng"])
        self.baseline = doc["baseline"]
        self.best = doc["best"]
        self.log = doc["log"]

    def run(
        self,
        evaluate: Evaluator,
        episodes: int,
        on_episode: Callable[[int, dict[str, Any]], None] | None = None,
        stop_after: int | None = None,
    ) -> SearchResult:
        """Run until ``episodes`` are done (``stop_after`` ends early, as an interruption)."""
        done_now = 0
        while self.episodes_done < episodes:
            if stop_after is not None and done_now >= stop_after:
                break
            episode = self.episodes_done
            actions, log_prob = self.controller.sample(self.generator)
            child = Child.decode(self.space, actions)
            outcome = evaluate(child, episode)
            r = float(outcome.reward)
            if self.baseline is None:
                self.baseline = r
            advantage = r - self.baseline
            self.optimizer.zero_grad()
            loss = -log_prob * advantage
            loss.backward()
            self.optimizer.step()
            self.baseline = (
                self.config.baseline_decay * self.baseline + (1 - self.config.baseline_decay) * r
            )
            entry = {"episode": episode, "reward": r, "child": child.to_dict(), **outcome.detail}
            self.log.append(entry)
            if self.best is None or r > self.best["reward"]:
                self.best = {"reward": r, "child": child.to_dict(), "episode": episode}
            if self.state_dir is not None:
                self._save()
            done_now += 1
            if on_episode is not None:
                on_episode(episode, entry)
        if self.best is None:
            raise CompressionError("search: no episode was run (episodes must be >= 1)")
        return SearchResult(
            Child.from_dict(self.best["child"]),
            float(self.best["reward"]),
            list(self.log),
            self.baseline,
            {k: v.detach().clone() for k, v in self.controller.state_dict().items()},
        )
