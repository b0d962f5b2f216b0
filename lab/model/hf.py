"""Hugging Face BERT-family sequence classifiers from a local checkpoint directory.

DistilBERT, BERT and BERT-architecture models such as MiniLM (and RoBERTa, which the BP
paper also pruned) load with ``local_files_only=True``: nothing is ever downloaded. A
checkpoint directory is what ``save_pretrained`` writes: ``config.json`` plus
``model.safetensors`` (or a sharded index, or ``pytorch_model.bin``). ``transformers`` is
imported only when a model is loaded (it is the optional ``hf`` extra).

Every prunable weight of these models is an ``nn.Linear`` or ``nn.Embedding``, so
:func:`lab.model.prunable_layers` lists them by their Hugging Face module names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

SUPPORTED_MODEL_TYPES = ("bert", "distilbert", "roberta")
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json")
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin")


class CheckpointError(ValueError):
    """A checkpoint directory is missing, incomplete or not a supported model."""


def checkpoint_config(path: str | Path) -> dict[str, Any]:
    """The checkpoint's ``config.json`` after checking the directory is a usable checkpoint."""
    from contracts.files import file_in_dir

    path = Path(path)
    what = f"Hugging Face checkpoint {path}"
    config_file = file_in_dir(
        path,
        "config.json",
        CheckpointError,
        f"{what}: not found or not a directory",
        f"{what}: missing config.json (not a save_pretrained directory)",
    )
    try:
        config = json.loads(config_file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(f"{config_file}: not valid JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise CheckpointError(f"{config_file}: expected a JSON object")
    model_type = config.get("model_type")
    if model_type not in SUPPORTED_MODEL_TYPES:
        raise CheckpointError(
            f"{config_file}: model_type {model_type!r}: expected one of "
            f"{list(SUPPORTED_MODEL_TYPES)} (BERT family)"
        )
    if not any((path / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointError(
            f"Hugging Face checkpoint {path}: no weights (expected one of {list(WEIGHT_FILES)})"
        )
    return config


def _require_transformers() -> Any:
    try:
        import transformers
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise CheckpointError(
            "Hugging Face models need the optional 'hf' extra: pip install 'rt3lab[hf]'"
        ) from exc
    return transformers


def load_hf_classifier(path: str | Path, num_labels: int | None = None, **kwargs: Any) -> nn.Module:
    """A sequence classifier from a local checkpoint, in eval mode.

    ``num_labels`` overrides the checkpoint's (a fresh classification head is then made
    when the sizes differ, e.g. a pre-trained encoder fine-tuned on a new GLUE task).
    Extra ``kwargs`` go to ``from_pretrained``.
    """
    checkpoint_config(path)
    transformers = _require_transformers()
    options: dict[str, Any] = {"local_files_only": True, **kwargs}
    if num_labels is not None:
        options["num_labels"] = int(num_labels)
        options.setdefault("ignore_mismatched_sizes", True)
    hf_logging = transformers.utils.logging
    bars, verbosity = hf_logging.is_progress_bar_enabled(), hf_logging.get_verbosity()
    # Loading is quick; its progress bars and load report would only clutter the lab's output.
    hf_logging.disable_progress_bar()
    hf_logging.set_verbosity_error()
    try:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(
            str(path), **options
        )
    except (OSError, ValueError) as exc:
        raise CheckpointError(f"Hugging Face checkpoint {path}: cannot load ({exc})") from exc
    finally:
        hf_logging.set_verbosity(verbosity)
        if bars:
            hf_logging.enable_progress_bar()
    return model.eval()


def load_hf_tokenizer(path: str | Path) -> Any:
    """The tokenizer saved next to the checkpoint (``save_pretrained``); local files only."""
    path = Path(path)
    checkpoint_config(path)
    if not any((path / name).is_file() for name in TOKENIZER_FILES):
        raise CheckpointError(
            f"Hugging Face checkpoint {path}: no tokenizer files "
            f"(expected one of {list(TOKENIZER_FILES)}; save the tokenizer with save_pretrained)"
        )
    transformers = _require_transformers()
    try:
        return transformers.AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (OSError, ValueError, TypeError) as exc:
        raise CheckpointError(
            f"Hugging Face checkpoint {path}: no usable tokenizer files ({exc})"
        ) from exc
