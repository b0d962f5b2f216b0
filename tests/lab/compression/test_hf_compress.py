"""compress on a Hugging Face classifier and GLUE TSVs: a tiny BERT checkpoint made here."""

import pytest
import torch

from device_profiles import load_profile
from lab.cli import main
from lab.compression.budget import TEST
from lab.compression.evaluation import evaluate_bundle
from lab.compression.options import CompressOptions
from lab.compression.pipeline import compress
from lab.compression.tasks import load_task
from lab.runtime.bundle import Bundle

transformers = pytest.importorskip("transformers")

WORDS = ["good", "bad", "film", "plot", "very", "not", "the", "a"]


@pytest.fixture
def glue_and_checkpoint(tmp_path):
    """SST-2 TSVs whose label is learnable from the words, and a 2-layer BERT checkpoint."""
    import random

    rng = random.Random(0)

    def rows(n):
        out = []
        for _ in range(n):
            w = rng.choice(("good", "bad"))
            fill = " ".join(rng.choice(WORDS[2:]) for _ in range(rng.randrange(2, 6)))
            out.append(f"{fill} {w} {fill}\t{int(w == 'good')}")
        return "sentence\tlabel\n" + "\n".join(out) + "\n"

    glue = tmp_path / "glue" / "SST-2"
    glue.mkdir(parents=True)
    (glue / "train.tsv").write_text(rows(200))
    (glue / "dev.tsv").write_text(rows(60))
    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    vocab = {w: i for i, w in enumerate([*specials, *WORDS])}
    ckpt = tmp_path / "ckpt"
    transformers.BertTokenizer(vocab=vocab).save_pretrained(ckpt)
    config = transformers.BertConfig(
        vocab_size=len(vocab), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=96, max_position_embeddings=32, num_labels=2,
    )  # fmt: skip
    torch.manual_seed(0)
    transformers.BertForSequenceClassification(config).save_pretrained(ckpt)
    return tmp_path / "glue", ckpt


def test_hf_classifier_compresses_to_a_bundle_the_runtime_loads(glue_and_checkpoint, tmp_path):
    from lab.runtime.reconfigurable import ReconfigurableModel, module_from_bundle

    glue, ckpt = glue_and_checkpoint
    task = load_task(f"hf:{ckpt}", f"glue:sst2:{glue}", TEST)
    assert task.seq_len <= 32 and task.metric == "accuracy"
    layers = list(task.prunable(task.build_model()))
    # the encoder blocks' Linear layers only: 6 per BERT layer, no embeddings, no head
    assert len(layers) == 12 and all(".layer." in n for n in layers)
    # raw profile deadlines: under scaled ones the tiny BERT's measured unpruned rest makes
    # the lowest level infeasible
    opts = CompressOptions("rt3-paper", tmp_path / "b", TEST, seed=0, threads=1, block_rows=16,
                           block_cols=16, deadlines="profile", estimator="measured")  # fmt: skip
    out = compress(task, load_profile("rt3-paper"), opts)
    b = Bundle.load(out)
    assert b.model["kind"] == "hf" and b.model["config"]["num_labels"] == 2
    assert b.provenance["metric"] == "accuracy"
    pp = [e for e in b.entries.values() if e.name != "bp"]
    assert len(pp) == 3 and all(e.perplexity is None for e in pp)
    assert all(0.0 <= e.accuracy <= 1.0 for e in pp)
    bp = b.sets["bp"].masks()
    assert set(bp) == set(layers)
    assert 0.4 < b.entries["bp"].sparsity < 0.6  # bp_bert.yaml: 0.5 on every encoder Linear
    for name, ps in b.sets.items():
        for layer, mask in ps.masks().items():
            assert not bool((mask & ~bp[layer]).any()), (name, layer)
    ev = evaluate_bundle(out)
    assert ev.dense_perplexity is None and "at_least_3_sets" in ev.checks
    # the runtime runs every set of the bundle and matches the masked model
    model = module_from_bundle(b)
    rm = ReconfigurableModel(model, list(b.sets.values()))
    ids = torch.randint(5, 13, (2, 12))
    for name in b.set_names:
        rm.switch(name)
        assert rm(input_ids=ids).logits.shape == (2, 2)


def test_hf_compress_cli_prints_the_table(glue_and_checkpoint, tmp_path, capsys, monkeypatch):
    glue, ckpt = glue_and_checkpoint
    monkeypatch.setattr("lab.compression.budget.QUICK", TEST)
    out = tmp_path / "cli"
    args = ["compress", "--quick", "--model", f"hf:{ckpt}", "--data", f"glue:sst2:{glue}",
            "--out", str(out), "--threads", "1", "--block", "16", "--json",
            "--deadlines", "profile"]  # fmt: skip
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 0, capsys.readouterr().err
    assert '"dense"' in capsys.readouterr().out


def test_missing_checkpoint_is_named(glue_and_checkpoint, tmp_path):
    glue, _ = glue_and_checkpoint
    with pytest.raises(ValueError, match="nowhere"):
        load_task(f"hf:{tmp_path / 'nowhere'}", f"glue:sst2:{glue}", TEST)
