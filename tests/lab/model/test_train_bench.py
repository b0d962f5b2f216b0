"""``rt3lab bench train`` end to end on a small WikiText-2 directory and a tiny model."""

import json

from typer.testing import CliRunner

from lab.bench.train import app


def test_bench_train_json(tmp_path):
    text = " the cat sat on the mat .\n the dog sat on the log .\n" * 40
    for split in ("train", "valid", "test"):
        (tmp_path / f"wiki.{split}.raw").write_text(text)
    result = CliRunner().invoke(
        app,
        ["--data", f"wikitext2:{tmp_path}", "--size", "tiny", "--seconds", "0.3",
         "--threads", "1", "--eval-tokens", "100", "--json"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["config"]["emb"] == 16
    assert report["train"]["steps"] >= 1 and report["train"]["tokens"] > 0
    assert report["valid"]["tokens"] == 100
    assert 0.0 <= report["valid"]["accuracy"] <= 1.0
    assert report["corpus"]["vocab"] == 10


def test_bench_train_table(tmp_path):
    text = " a b c d .\n" * 50
    for split in ("train", "valid", "test"):
        (tmp_path / f"wiki.{split}.raw").write_text(text)
    result = CliRunner().invoke(
        app,
        ["--data", f"wikitext2:{tmp_path}", "--size", "tiny", "--seconds", "0.1",
         "--threads", "1", "--eval-tokens", "50"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "valid accuracy" in result.stdout
