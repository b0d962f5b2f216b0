"""``compress --device cpu|cuda|auto``: checked on a CPU-only machine.

What can be shown without a GPU: the option is validated before anything is read or
written (exit 2, one line); ``auto`` resolves to what torch sees; and every training and
scoring loop runs its model, batches and masks on the device ``compute_device`` sets
(asserted on real tensors), returning the model where it was, with CPU results unchanged.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lab.compression.finetune import StepPlan, joint_finetune, train_masked
from lab.host.compute import DeviceError, compute_device, resolve_device, to_device
from lab.model.training import evaluate_lm, train_lm
from lab.model.transformer import RT3TransformerLM

RT3LAB = shutil.which("rt3lab") or str(Path(sys.executable).with_name("rt3lab"))


@pytest.mark.parametrize(
    ("command", "needle"),
    [
        (["compress", "--device", "cuda"], "--device cuda: CUDA is not available"),
        (["compress", "--device", "tpu"], "--device tpu: expected one of auto, cpu, cuda"),
        (["evaluate", "--bundle", "b", "--device", "cuda:3"], "--device cuda:3"),
    ],
)
@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the CPU-only message")
def test_unusable_device_is_one_line_exit_2_before_anything_is_written(tmp_path, command, needle):
    out_dir = tmp_path / "bundle"
    args = [*command, "--out", str(out_dir)] if command[0] == "compress" else command
    out = subprocess.run([RT3LAB, *args], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and needle in out.stderr
    assert not out_dir.exists()


def test_help_shows_the_device_choices():
    out = subprocess.run([RT3LAB, "compress", "--help"], capture_output=True, text=True)
    assert "--device cpu|cuda|auto" in out.stdout


def test_auto_follows_what_torch_sees():
    want = "cuda" if torch.cuda.is_available() else "cpu"
    assert resolve_device("auto").type == want
    with pytest.raises(DeviceError, match="expected one of"):
        resolve_device("gpu")


def test_to_device_moves_nested_batches():
    batch = {"ids": torch.ones(2, 3), "pair": (torch.zeros(1), [torch.zeros(2)]), "n": 3}
    moved = to_device(batch, torch.device("cpu"))
    assert moved["n"] == 3 and isinstance(moved["pair"], tuple)
    assert {t.device.type for t in (moved["ids"], moved["pair"][0], moved["pair"][1][0])} == {"cpu"}


def _model() -> RT3TransformerLM:
    torch.manual_seed(0)
    return RT3TransformerLM(vocab_size=50, emb=16, ff=8, layers=1, heads=2, dropout=0.0)


def _spy(model: torch.nn.Module, seen: list) -> None:
    """Record, at every forward, the input's device and the parameters' devices."""

    def hook(mod, args):
        seen.append((args[0].device, {p.device for p in mod.parameters()}))

    model.register_forward_pre_hook(hook)


def _run_all(model: RT3TransformerLM) -> list[float]:
    data = torch.randint(0, 50, (600,), generator=torch.Generator().manual_seed(1))
    masks = {"layers.0.linear1": (torch.rand(8, 16) > 0.5).float()}
    res = train_lm(model, data, max_steps=3, batch_size=4, seq_len=8, threads=1)
    score = evaluate_lm(model, data, seq_len=8, threads=1)
    a = train_masked(model, data, masks, StepPlan(2, torch.Generator().manual_seed(2), 4), 8)
    plan = StepPlan(2, torch.Generator().manual_seed(3), 4)
    b = joint_finetune(model, [masks, masks], [0.5, 0.5], data, masks, plan, 8)
    return [res.final_loss, score.loss, a, b]


def test_every_loop_runs_on_the_compute_device_and_cpu_results_are_unchanged():
    plain = _run_all(_model())
    model, seen = _model(), []
    _spy(model, seen)
    with compute_device("cpu") as dev:
        on_device = _run_all(model)
    assert dev == torch.device("cpu")
    assert len(seen) > 10  # every loop ran forwards
    assert all(x == dev and params == {dev} for x, params in seen)
    assert on_device == plain  # bit for bit
    assert {p.device for p in model.parameters()} == {torch.device("cpu")}  # back home
