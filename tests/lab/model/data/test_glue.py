"""GLUE TSV loading from small files the tests write in the standard layout."""

import pytest

from lab.model.data import load_glue
from lab.model.data.glue import TASKS, GlueError, task_spec

HEADERS = {
    "SST-2": ("sentence\tlabel", ["a fine film\t1", 'a "dull" one\t0']),
    "MRPC": (
        "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String",
        ["1\t1\t2\tHe said so.\tHe said it.", "0\t3\t4\tIt rains.\tThe sun shines."],
    ),
    "QNLI": (
        "index\tquestion\tsentence\tlabel",
        ["0\tWho?\tHim.\tentailment", "1\tWhy?\tNo.\tnot_entailment"],
    ),
    "RTE": (
        "index\tsentence1\tsentence2\tlabel",
        ["0\tA cat sat.\tAn animal sat.\tentailment", "1\tX.\tY.\tnot_entailment"],
    ),
    "QQP": (
        "id\tqid1\tqid2\tquestion1\tquestion2\tis_duplicate",
        ["0\t1\t2\tHow?\tHow so?\t1", "1\t3\t4\tWhat?\tWhen?\t0"],
    ),
    "STS-B": (
        "index\tgenre\tfilename\tyear\told_index\tsource1\tsource2\tsentence1\tsentence2\tscore",
        ["0\tg\tf\t2012\t1\ts\ts\tA man.\tA person.\t4.200", "1\tg\tf\t2012\t2\ts\ts\tA.\tB.\t0.5"],
    ),
}
MNLI_HEADER = "\t".join(
    ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
     "sentence1_parse", "sentence2_parse", "sentence1", "sentence2", "label1", "gold_label"]
)  # fmt: skip


def mnli_row(i, label):
    return "\t".join([str(i), "1", "2", "fiction", "(", "(", "(", "(", "P.", "H.", label, label])


def write(path, lines):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


@pytest.fixture
def glue_root(tmp_path):
    for folder, (header, rows) in HEADERS.items():
        for split in ("train", "dev"):
            write(tmp_path / folder / f"{split}.tsv", [header, *rows])
    cola = ["gj04\t1\t\tThe book is red.", "gj04\t0\t*\tBook the red is."]
    for split in ("train", "dev"):
        write(tmp_path / "CoLA" / f"{split}.tsv", cola)
    for split in ("train", "dev_matched", "dev_mismatched"):
        write(
            tmp_path / "MNLI" / f"{split}.tsv",
            [MNLI_HEADER, mnli_row(0, "neutral"), mnli_row(1, "contradiction")],
        )
    return tmp_path


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_loads_from_the_root(glue_root, task):
    data = load_glue(task, glue_root)
    assert data.task == task
    for split in data.splits.values():
        assert len(split) == 2
        assert all(ex.text_a for ex in split)
    if task in ("cola", "sst2"):
        assert data.splits["train"][0].text_b is None


def test_fields_and_labels(glue_root):
    cola = load_glue("CoLA", glue_root)
    assert [(e.text_a, e.label) for e in cola.splits["dev"]] == [
        ("The book is red.", 1),
        ("Book the red is.", 0),
    ]
    sst = load_glue("SST-2", glue_root / "SST-2")  # the task folder itself works too
    assert sst.splits["train"][1].text_a == 'a "dull" one'
    mrpc = load_glue("mrpc", glue_root).splits["train"][0]
    assert (mrpc.text_a, mrpc.text_b, mrpc.label) == ("He said so.", "He said it.", 1)
    mnli = load_glue("MNLI", glue_root)
    assert set(mnli.splits) == {"train", "dev_matched", "dev_mismatched"}
    assert [e.label for e in mnli.splits["dev_mismatched"]] == [2, 0]
    assert mnli.num_labels == 3
    sts = load_glue("STS-B", glue_root)
    assert sts.is_regression and sts.num_labels == 1
    assert [e.label for e in sts.splits["train"]] == [4.2, 0.5]
    assert load_glue("rte", glue_root).splits["dev"][1].label == 1


def test_missing_directory_and_file(tmp_path):
    with pytest.raises(GlueError, match="not found"):
        load_glue("sst2", tmp_path / "nope")
    with pytest.raises(GlueError, match=r"missing file .*train\.tsv"):
        load_glue("sst2", tmp_path)
    write(tmp_path / "RTE" / "train.tsv", ["index\tsentence1\tsentence2\tlabel"])
    with pytest.raises(GlueError, match=r"missing file .*RTE/dev\.tsv"):
        load_glue("rte", tmp_path)


def test_unknown_task():
    with pytest.raises(GlueError, match="GLUE task 'wnli'"):
        task_spec("wnli")


@pytest.mark.parametrize(
    ("folder", "task", "bad", "message"),
    [
        (
            "SST-2",
            "sst2",
            "only one field",
            r"train\.tsv:3: expected 2 tab-separated fields, got 1",
        ),
        ("SST-2", "sst2", "good\t7", r"train\.tsv:3: label '7'"),
        ("RTE", "rte", "2\tA.\tB.\tmaybe", r"train\.tsv:3: label 'maybe'"),
        ("STS-B", "stsb", "2\tg\tf\t2012\t3\ts\ts\tA.\tB.\thigh", r"train\.tsv:3: score 'high'"),
        ("CoLA", "cola", "gj04\t1\tThe book.", r"train\.tsv:3: expected 4 .* got 3"),
    ],
)
def test_malformed_rows_name_file_and_line(glue_root, folder, task, bad, message):
    path = glue_root / folder / "train.tsv"
    lines = path.read_text().splitlines()
    lines.insert(2, bad)
    write(path, lines)
    with pytest.raises(GlueError, match=message):
        load_glue(task, glue_root)


def test_header_without_the_column(glue_root):
    write(glue_root / "SST-2" / "train.tsv", ["text\tlabel", "x\t1"])
    with pytest.raises(GlueError, match=r"train\.tsv:1: header has no column 'sentence'"):
        load_glue("sst2", glue_root)


def test_glue_error_is_a_value_error():
    assert issubclass(GlueError, ValueError)
