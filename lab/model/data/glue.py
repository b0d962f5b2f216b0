"""GLUE tasks from the standard TSV files in a local directory (nothing is downloaded).

The layout is the one the GLUE distribution unpacks to: one folder per task (``CoLA``,
``SST-2``, ``MRPC``, ``QNLI``, ``RTE``, ``MNLI``, ``QQP``, ``STS-B``) with ``train.tsv`` and
``dev.tsv`` (MNLI: ``dev_matched.tsv`` and ``dev_mismatched.tsv``). CoLA has no header line;
the others have one and columns are found by name. Fields are split on tabs with no quoting
(GLUE sentences contain bare quote marks). ``dir`` may be the task folder itself or the GLUE
root holding it. A row with the wrong number of fields, an unknown label or a score that is
not a number raises :class:`GlueError` naming the file and line.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lab.model.data.corpus import CorpusError


class GlueError(CorpusError):
    """A GLUE directory, file or row is missing or malformed; the message names it."""


@dataclass(frozen=True)
class GlueTaskSpec:
    """Where a GLUE task keeps its fields."""

    folder: str
    splits: dict[str, str]
    """Split name -> file name."""
    text_a: str | int
    text_b: str | int | None
    label: str | int
    labels: tuple[str, ...] | None
    """Label strings in class-index order; None for regression (STS-B)."""
    header: bool = True
    columns: int | None = None
    """Fields per row when there is no header."""


_BINARY = ("0", "1")
_ENTAIL = ("entailment", "not_entailment")
TASKS: dict[str, GlueTaskSpec] = {
    "cola": GlueTaskSpec(
        "CoLA", {"train": "train.tsv", "dev": "dev.tsv"}, 3, None, 1, _BINARY, False, 4
    ),
    "sst2": GlueTaskSpec(
        "SST-2", {"train": "train.tsv", "dev": "dev.tsv"}, "sentence", None, "label", _BINARY
    ),
    "mrpc": GlueTaskSpec(
        "MRPC", {"train": "train.tsv", "dev": "dev.tsv"}, "#1 String", "#2 String", "Quality",
        _BINARY,
    ),
    "qnli": GlueTaskSpec(
        "QNLI", {"train": "train.tsv", "dev": "dev.tsv"}, "question", "sentence", "label", _ENTAIL
    ),
    "rte": GlueTaskSpec(
        "RTE", {"train": "train.tsv", "dev": "dev.tsv"}, "sentence1", "sentence2", "label",
        _ENTAIL,
    ),
    "mnli": GlueTaskSpec(
        "MNLI",
        {"train": "train.tsv", "dev_matched": "dev_matched.tsv",
         "dev_mismatched": "dev_mismatched.tsv"},
        "sentence1", "sentence2", "gold_label", ("contradiction", "entailment", "neutral"),
    ),
    "qqp": GlueTaskSpec(
        "QQP", {"train": "train.tsv", "dev": "dev.tsv"}, "question1", "question2",
        "is_duplicate", _BINARY,
    ),
    "stsb": GlueTaskSpec(
        "STS-B", {"train": "train.tsv", "dev": "dev.tsv"}, "sentence1", "sentence2", "score", None
    ),
}  # fmt: skip
_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli-mm": "mnli"}


@dataclass(frozen=True)
class GlueExample:
    """One example: one or two texts and a class index (or a float score for STS-B)."""

    text_a: str
    text_b: str | None
    label: int | float


@dataclass
class GlueData:
    """A GLUE task's labelled splits (``train``, ``dev`` or MNLI's two dev sets)."""

    task: str
    splits: dict[str, list[GlueExample]]
    labels: tuple[str, ...] | None
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def num_labels(self) -> int:
        """Classes, or 1 for the regression task STS-B."""
        return len(self.labels) if self.labels else 1

    @property
    def is_regression(self) -> bool:
        """True for STS-B."""
        return self.labels is None


def task_spec(task: str) -> tuple[str, GlueTaskSpec]:
    """Canonical task name and its spec; accepts ``SST-2``, ``sst2``, ``STS-B`` ...

    >>> task_spec("SST-2")[0]
    'sst2'
    """
    key = task.lower()
    key = _ALIASES.get(key, key)
    if key not in TASKS:
        raise GlueError(f"GLUE task {task!r}: expected one of {sorted(TASKS)}")
    return key, TASKS[key]


def _task_dir(directory: Path, spec: GlueTaskSpec) -> Path:
    if not directory.is_dir():
        raise GlueError(f"GLUE directory {directory}: not found or not a directory")
    first = next(iter(spec.splits.values()))
    for candidate in (directory, directory / spec.folder):
        if (candidate / first).is_file():
            return candidate
    raise GlueError(
        f"GLUE {spec.folder}: missing file {directory / first} "
        f"(also looked in {directory / spec.folder})"
    )


def _column(header: list[str], name: str | int, path: Path) -> int:
    if isinstance(name, int):
        return name
    try:
        return header.index(name)
    except ValueError:
        raise GlueError(f"{path}:1: header has no column {name!r} (got {header})") from None


def read_split(path: Path, spec: GlueTaskSpec) -> list[GlueExample]:
    """Parse one GLUE TSV file with ``spec``'s columns; errors name ``path:line``."""
    if not path.is_file():
        raise GlueError(f"GLUE: missing file {path}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError as exc:
        raise GlueError(f"{path}: not UTF-8 text (byte {exc.start})") from exc
    start = 0
    if spec.header:
        if not lines:
            raise GlueError(f"{path}:1: empty file, expected a header line")
        header = lines[0].split("\t")
        width = len(header)
        start = 1
    else:
        header, width = [], spec.columns or 0
    a = _column(header, spec.text_a, path)
    b = _column(header, spec.text_b, path) if spec.text_b is not None else None
    y = _column(header, spec.label, path)
    examples = []
    for number, line in enumerate(lines[start:], start=start + 1):
        if not line.strip():
            continue
        row = line.split("\t")
        if len(row) != width:
            raise GlueError(
                f"{path}:{number}: expected {width} tab-separated fields, got {len(row)}"
            )
        raw = row[y].strip()
        label: int | float
        if spec.labels is None:
            try:
                label = float(raw)
            except ValueError:
                raise GlueError(f"{path}:{number}: score {raw!r} is not a number") from None
        elif raw in spec.labels:
            label = spec.labels.index(raw)
        else:
            raise GlueError(f"{path}:{number}: label {raw!r}: expected one of {list(spec.labels)}")
        examples.append(GlueExample(row[a], row[b] if b is not None else None, label))
    return examples


def load_glue(task: str, directory: str | Path) -> GlueData:
    """Train and dev splits of a GLUE ``task`` from ``directory`` (the GLUE root or task dir).

    MNLI's splits are ``train``, ``dev_matched`` and ``dev_mismatched``; the unlabelled
    ``test.tsv`` files are not read.
    """
    name, spec = task_spec(task)
    folder = _task_dir(Path(directory), spec)
    splits = {split: read_split(folder / filename, spec) for split, filename in spec.splits.items()}
    return GlueData(name, splits, spec.labels, {"directory": str(folder)})


@dataclass
class EncodedGlue:
    """One GLUE split as padded tensors: what a Hugging Face classifier takes."""

    input_ids: Any
    """``(n, length)`` int64."""
    attention_mask: Any
    token_type_ids: Any | None
    labels: Any
    """``(n,)`` int64 class indices, or float32 scores for regression."""

    def __len__(self) -> int:
        return int(self.input_ids.shape[0])

    def inputs(self, index: Any = slice(None)) -> dict[str, Any]:
        """Keyword arguments for the model's forward, for rows ``index``."""
        out = {"input_ids": self.input_ids[index], "attention_mask": self.attention_mask[index]}
        if self.token_type_ids is not None:
            out["token_type_ids"] = self.token_type_ids[index]
        return out


def encode_glue(examples: list[GlueExample], tokenizer: Any, max_length: int = 128) -> EncodedGlue:
    """Tokenize examples (pairs as pairs) with a Hugging Face tokenizer, pad to the longest."""
    import torch

    if not examples:
        raise GlueError("encode_glue: no examples")
    a = [e.text_a for e in examples]
    b = [e.text_b for e in examples]
    pairs = b[0] is not None
    enc = tokenizer(
        a,
        b if pairs else None,
        truncation=True,
        max_length=max_length,
        padding="longest",
        return_tensors="pt",
    )
    regression = isinstance(examples[0].label, float)
    labels = torch.tensor(
        [e.label for e in examples], dtype=torch.float32 if regression else torch.long
    )
    return EncodedGlue(
        input_ids=enc["input_ids"],
        attention_mask=enc["attention_mask"],
        token_type_ids=enc.get("token_type_ids"),
        labels=labels,
    )
