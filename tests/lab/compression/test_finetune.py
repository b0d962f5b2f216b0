"""Joint fine-tuning: sets share one weight tensor; nothing BP pruned revives."""

import torch
from torch import nn

from lab.compression.finetune import StepPlan, applied_masks, joint_finetune


class Tiny(nn.Module):
    def __init__(self, vocab=30, emb=16):
        super().__init__()
        self.embedding = nn.Embedding(vocab, emb)
        self.decoder = nn.Linear(emb, vocab)

    def forward(self, tokens):
        return self.decoder(self.embedding(tokens))


def test_joint_finetune_keeps_bp_zeros_and_trains_only_kept_weights():
    torch.manual_seed(0)
    model = Tiny()
    g = torch.Generator().manual_seed(0)
    bp = {"decoder": torch.rand(30, 16, generator=g) > 0.3}
    sparse = {"decoder": bp["decoder"] & (torch.rand(30, 16, generator=g) > 0.5)}
    sparser = {"decoder": sparse["decoder"] & (torch.rand(30, 16, generator=g) > 0.5)}
    with torch.no_grad():
        model.decoder.weight.mul_(bp["decoder"])
    before = model.decoder.weight.detach().clone()
    data = torch.randint(0, 30, (500,), generator=g)
    plan = StepPlan(15, g, batch_size=4, lr=1e-2)
    joint_finetune(model, [sparse, sparser], [0.6, 0.4], data, bp, plan, seq_len=8)
    w = model.decoder.weight.detach()
    assert bool((w[~bp["decoder"]] == 0).all())  # BP-pruned weights never revive
    # weights no set keeps get no gradient (Adam leaves them exactly as they were)
    untouched = bp["decoder"] & ~sparse["decoder"]
    assert torch.equal(w[untouched], before[untouched])
    assert not torch.equal(w[sparse["decoder"]], before[sparse["decoder"]])


def test_applied_masks_restores_weights():
    model = Tiny()
    before = model.decoder.weight.detach().clone()
    mask = {"decoder": torch.zeros(30, 16, dtype=torch.bool)}
    with applied_masks(model, mask):
        assert bool((model.decoder.weight == 0).all())
    assert torch.equal(model.decoder.weight, before)
