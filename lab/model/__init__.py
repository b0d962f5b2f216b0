"""Models: the RT3 Transformer language model and Hugging Face BERT-family classifiers.

``build_model(kind, config)`` builds either from a JSON-style config (what a bundle stores);
``prunable_layers(model)`` lists the weights that pruning may touch. torch is imported
lazily so that importing this package stays cheap for the CLI.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from torch import nn

MODEL_KINDS = ("rt3-transformer", "hf")


def build_model(kind: str, config: dict[str, Any]) -> nn.Module:
    """Build a model of ``kind`` from its JSON-style ``config``.

    ``rt3-transformer``: the fields of :class:`lab.model.transformer.RT3Config`
    (``vocab_size`` required; RT3's sizes are the defaults; an optional ``seed`` makes the
    initial weights reproducible). ``hf``: ``{"path": DIR}`` plus optional ``num_labels``;
    see :func:`lab.model.hf.load_hf_classifier`.

    >>> model = build_model("rt3-transformer", {"vocab_size": 30, "emb": 8, "ff": 4, "heads": 2})
    >>> type(model).__name__
    'RT3TransformerLM'
    """
    if kind == "rt3-transformer":
        import torch

        from lab.model.transformer import RT3TransformerLM

        config = dict(config)
        seed = config.pop("seed", None)
        if seed is None:
            return RT3TransformerLM.from_config(config)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            return RT3TransformerLM.from_config(config)
    if kind == "hf":
        from lab.model.hf import load_hf_classifier

        config = dict(config)
        if "path" not in config:
            raise ValueError("model config for kind 'hf': missing field 'path' (a checkpoint dir)")
        return load_hf_classifier(config.pop("path"), **config)
    raise ValueError(f"model kind {kind!r}: expected one of {list(MODEL_KINDS)}")


def prunable_layers(model: nn.Module) -> dict[str, nn.Module]:
    """Every ``nn.Linear`` and ``nn.Embedding`` of ``model`` by qualified module name.

    The order is the model's module registration order (``named_modules``), which is stable
    for a given architecture: for the RT3 model, ``embedding``, then each layer's
    ``self_attn.in_proj``, ``self_attn.out_proj``, ``linear1``, ``linear2``, then ``decoder``.

    >>> model = build_model("rt3-transformer", {"vocab_size": 30, "emb": 8, "ff": 4,
    ...                                         "layers": 1, "heads": 2})
    >>> list(prunable_layers(model))
    ['embedding', 'layers.0.self_attn.in_proj', 'layers.0.self_attn.out_proj', \
'layers.0.linear1', 'layers.0.linear2', 'decoder']
    """
    from torch import nn

    return {
        name: module
        for name, module in model.named_modules()
        if isinstance(module, nn.Linear | nn.Embedding)
    }


__all__ = ["MODEL_KINDS", "build_model", "prunable_layers"]
