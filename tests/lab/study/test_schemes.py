"""``rt3lab study schemes`` (issue 30): on the test budget, every scheme (RT3's pattern sets,
width, depth, early exit) compressed, profiled on this host and simulated; the JSON's shape,
the best policy within the accuracy bound being the brute-force longest-lasting one within
it, the frontier figure, the bundles reused on a second run, and bad input in one line."""

from __future__ import annotations

import json

import pytest
from bundle_builder import write_corpus
from cli_runner import rt3lab

from lab.runtime.synthetic import synthetic_bundle
from lab.study.schemes import best_within, compare_schemes, policy_figures, study_policies
from reports.schemes_map import best_table, frontier_figure, readme_block

SCHEMES = ("rt3", "width", "depth", "early-exit")
POLICY_KEYS = {
    "battery_life_h",
    "battery_life_h_ci95",
    "on_time_inferences",
    "on_time_inferences_ci95",
    "mean_accuracy",
    "mean_accuracy_ci95",
    "table",
    "accuracy_loss_points",
    "within_accuracy",
}


def _study(root, *extra):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RT3LAB_CACHE", str(root / "cache"))
        return rt3lab(
            "study", "schemes", "--schemes", ",".join(SCHEMES), "--budget", "test",
            "--data", f"wikitext2:{root / 'wikitext2'}", "--out", str(root / "out"),
            "--resamples", "20", "--threads", "1", "--json", *extra,
        )  # fmt: skip


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    """The study run twice on the same directory: the second finds every bundle."""
    root = tmp_path_factory.mktemp("schemes")
    write_corpus(root / "wikitext2")
    first = _study(root)
    assert first.code == 0, first.stderr
    again = _study(root)
    assert again.code == 0, again.stderr
    return root, json.loads(first.stdout), json.loads(again.stdout), again.stderr


@pytest.mark.slow
def test_every_scheme_has_its_bundle_variants_policies_and_best(study):
    root, doc, _, _ = study
    assert doc["study"] == "schemes" and doc["budget"] == "test" and doc["seed"] == 0
    assert list(doc["schemes"]) == list(SCHEMES)
    for scheme, e in doc["schemes"].items():
        bundle = json.loads((root / "out" / "bundles" / scheme / "bundle.json").read_text())
        assert bundle["scheme"] == scheme and e["bundle"] == str(root / "out/bundles" / scheme)
        assert (root / "out" / "profiles" / f"{scheme}.yaml").is_file()
        names = [v["name"] for v in e["variants"]]
        assert names[0] == "dense" and len(names) >= 4
        for v in e["variants"][1:]:
            assert v["level_khz"] in (1400000, 1000000, 800000, None)
            assert 0 <= v["accuracy"] <= 1 and all(ms > 0 for ms in v["latency_ms"].values())
        assert set(e["policies"]) == set(study_policies(names))
        for f in e["policies"].values():
            assert set(f) == POLICY_KEYS
        assert e["front"] and set(e["front"]) <= set(e["policies"])
        assert set(e["deadlines_ms"]) == {"800000", "1000000", "1400000"}
    early = doc["schemes"]["early-exit"]["variants"][1:]
    assert all(v["exits"] and "threshold" in v for v in early)
    assert all("depth" in v for v in doc["schemes"]["depth"]["variants"][1:])
    widths = [v["width"] for v in doc["schemes"]["width"]["variants"][1:]]
    assert widths == sorted(widths, reverse=True) and all(0 < w <= 1 for w in widths)
    assert doc["summary"]["sentences"] and "deadline_map" in doc


@pytest.mark.slow
def test_the_best_within_accuracy_is_the_longest_lasting_policy_within_the_bound(study):
    _, doc, _, _ = study
    bound = doc["max_accuracy_loss"]
    for e in doc["schemes"].values():
        dense = e["dense_accuracy"]
        within = {
            name: f["battery_life_h"]
            for name, f in e["policies"].items()
            if f["mean_accuracy"] is not None
            and f["battery_life_h"] is not None
            and (dense - f["mean_accuracy"]) * 100 <= bound + 1e-9
        }
        best = e["best_within_accuracy"]
        if not within:
            assert best is None
            continue
        assert best["battery_life_h"] == max(within.values())
        assert within[best["policy"]] == best["battery_life_h"]
        assert best["ci95"] == e["policies"][best["policy"]]["battery_life_h_ci95"]
    winner = doc["summary"]["winner"]
    bests = {s: e["best_within_accuracy"] for s, e in doc["schemes"].items()}
    hours = {s: b["battery_life_h"] for s, b in bests.items() if b}
    assert winner == (max(hours, key=hours.get) if hours else None)


@pytest.mark.slow
def test_the_deadline_map_moves_the_deadline_and_its_dense_top_point_is_the_headline(study):
    _, doc, _, _ = study
    bound = doc["max_accuracy_loss"]
    for e in doc["schemes"].values():
        points = e["deadline_map"]
        tops = [p["top_deadline_ms"] for p in points]
        assert len(points) == 4 and tops == sorted(tops)
        at_top = next(p for p in points if p["anchor"] == "dense-top")
        assert at_top["deadlines_ms"] == pytest.approx(e["deadlines_ms"])
        for name, f in at_top["policies"].items():
            assert f["battery_life_h"] == pytest.approx(e["policies"][name]["battery_life_h"])
        for p in points:
            within = {
                n: f["battery_life_h"] for n, f in p["policies"].items() if f["within_accuracy"]
            }
            best = p["best_within_accuracy"]
            assert (best is None) == (not within)
            assert best is None or best["battery_life_h"] == max(within.values())
            assert p["deadlines_ms"]["1400000"] == pytest.approx(p["top_deadline_ms"])
    sentences = doc["summary"]["deadline_map_sentences"]
    assert len(sentences) == 4 and all(s.startswith("At ") for s in sentences)
    assert f"within {bound:g} point(s)" in sentences[0]


@pytest.mark.slow
def test_the_frontier_figure_and_json_are_written_and_bundles_reused(study):
    root, doc, again, log = study
    figure = root / "out" / "schemes-frontier.png"
    assert doc["figures"] == [str(figure)]
    assert figure.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((root / "out" / "schemes.json").read_text()) == again
    for scheme, e in again["schemes"].items():
        assert e["reused"] == ["bundle", "profile", "evaluation"]
        assert f"{scheme}: bundle" in log and "reused" in log
    assert "compressing" not in log
    # the same measurements, the same seed: the same answer
    for scheme, e in doc["schemes"].items():
        assert {**e, "reused": None} == {**again["schemes"][scheme], "reused": None}


def _one_line_exit_2(run) -> str:
    assert run.code == 2, (run.stdout, run.stderr)
    err = run.stderr.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def test_an_unknown_scheme_is_refused_in_one_line(tmp_path):
    run = rt3lab("study", "schemes", "--schemes", "rt3,wide", "--out", str(tmp_path))
    assert "--schemes: unknown scheme 'wide'" in _one_line_exit_2(run)
    assert not (tmp_path / "bundles").exists()


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("--max-accuracy-loss", "-1", "max_accuracy_loss"),
        ("--budget", "huge", "--budget huge"),
        ("--resamples", "0", "--resamples 0"),
    ],
)
def test_bad_options_are_refused_in_one_line(tmp_path, option, value, said):
    run = rt3lab("study", "schemes", "--schemes", "rt3", option, value, "--out", str(tmp_path))
    assert said in _one_line_exit_2(run)


def test_a_bundle_of_another_scheme_in_the_study_directory_is_refused(tmp_path):
    config = {"vocab_size": 50, "emb": 16, "ff": 8, "layers": 1, "heads": 2}
    synthetic_bundle(tmp_path / "bundles" / "depth", config, {"bp": 0.5}, block_rows=8,
                     block_cols=8)  # fmt: skip
    run = rt3lab(
        "study", "schemes", "--schemes", "depth", "--budget", "test", "--out", str(tmp_path)
    )
    assert "bundle of scheme 'rt3', loaded as 'depth'" in _one_line_exit_2(run)


def test_a_bundle_of_another_budget_or_seed_is_refused_not_reused(tmp_path):
    config = {"vocab_size": 50, "emb": 16, "ff": 8, "layers": 1, "heads": 2}
    synthetic_bundle(tmp_path / "bundles" / "rt3", config, {"bp": 0.5}, block_rows=8,
                     block_cols=8)  # fmt: skip
    run = rt3lab(
        "study", "schemes", "--schemes", "rt3", "--budget", "test", "--seed", "3",
        "--out", str(tmp_path),
    )  # fmt: skip
    err = _one_line_exit_2(run)
    assert "bundles/rt3/bundle.json: compressed with budget" in err
    assert "this study asks budget test, seed 3, board rt3-paper" in err


def _doc(policies: dict, dense: float = 0.30, bound: float = 1.0) -> dict:
    figures = {n: policy_figures(s, dense, bound) for n, s in policies.items()}
    return {
        "board": "rt3-paper",
        "budget": "test",
        "max_accuracy_loss": bound,
        "schemes": {
            "rt3": {
                "dense_accuracy": dense,
                "policies": figures,
                "best_within_accuracy": best_within(figures, bound),
            }
        },
    }


def test_best_within_never_picks_a_policy_beyond_the_bound():
    spreads = {
        "rt3": {"battery_life_h": 9.0, "mean_accuracy": 0.28, "battery_life_h_ci95": [8, 10]},
        "dense-max": {"battery_life_h": 4.0, "mean_accuracy": 0.30},
        "static-sparse": {"battery_life_h": 6.0, "mean_accuracy": 0.291},
    }
    doc = _doc(spreads)
    assert doc["schemes"]["rt3"]["best_within_accuracy"]["policy"] == "static-sparse"
    assert _doc(spreads, bound=2.5)["schemes"]["rt3"]["best_within_accuracy"]["policy"] == "rt3"
    assert _doc(spreads, dense=0.5)["schemes"]["rt3"]["best_within_accuracy"] is None


def test_no_clear_winner_when_intervals_overlap_and_a_clear_one_when_not():
    a = {"policy": "rt3", "battery_life_h": 5.0, "ci95": [4.8, 5.2]}
    b = {"policy": "oracle", "battery_life_h": 4.0, "ci95": [3.9, 4.1]}
    clear = compare_schemes({"rt3": a, "width": b}, 1.0)
    assert clear["winner"] == "rt3" and clear["clear"]
    assert "lies above every other" in clear["sentences"][-1]
    close = compare_schemes({"rt3": a, "width": {**b, "ci95": [3.9, 4.9]}}, 1.0)
    assert not close["clear"] and "no clear winner" in close["sentences"][-1]
    assert compare_schemes({"rt3": None}, 1.0)["winner"] is None


def test_the_frontier_and_readme_block_come_from_the_json_alone():
    spreads = {
        "rt3": {
            "battery_life_h": 9.0,
            "mean_accuracy": 0.28,
            "battery_life_h_ci95": [8, 10],
            "mean_accuracy_ci95": [0.27, 0.29],
        },
        "dense-max": {"battery_life_h": 4.0, "mean_accuracy": 0.30},
    }
    doc = _doc(spreads, bound=3.0)
    doc["summary"] = {"sentences": ["rt3 wins."]}
    fig = frontier_figure(doc)
    assert len(fig.axes[0].lines) >= 2  # the front and the best's star
    block = readme_block(doc, "f.png")
    assert best_table(doc) in block and "- rt3 wins." in block and "](f.png)" in block


def test_width_is_on_the_map_where_no_width_meets_a_level(tmp_path):
    """A board whose 800 MHz constraint no width meets under the study's derived deadlines:
    the width bundle is written (its fastest width at that level, recorded), every policy
    simulated, and the entry names the unmet level (the study's refusal was issue 30's)."""
    import yaml

    from device_profiles.loader import resolve_profile_path

    doc = yaml.safe_load(resolve_profile_path("rt3-paper").read_text())
    for tc in doc["workload"]["timing_constraints"]:
        if tc["freq_khz"] == 800000:
            tc["deadline_ms"] = 20  # against 115 at 1.4 GHz: no width is that fast
    board = tmp_path / "tight.yaml"
    board.write_text(yaml.safe_dump(doc))
    write_corpus(tmp_path / "wikitext2")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RT3LAB_CACHE", str(tmp_path / "cache"))
        outcome = rt3lab(
            "study", "schemes", "--schemes", "width", "--budget", "test", "--board", str(board),
            "--data", f"wikitext2:{tmp_path / 'wikitext2'}", "--out", str(tmp_path / "out"),
            "--resamples", "5", "--threads", "1", "--json",
        )  # fmt: skip
    assert outcome.code == 0, outcome.stderr
    e = json.loads(outcome.stdout)["schemes"]["width"]
    assert [u["freq_khz"] for u in e["unmet_deadlines"]] == [800000]
    assert "width: warning: impossible deadline: at 800000 kHz" in outcome.stderr
    names = [v["name"] for v in e["variants"]]
    assert set(e["policies"]) == set(study_policies(names))
    assert all(f["battery_life_h"] is not None for f in e["policies"].values())
