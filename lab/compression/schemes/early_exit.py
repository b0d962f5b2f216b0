"""The early-exit scheme (DeeBERT, PABEE, EdgeBERT): an exit head after each encoder layer
but the last (whose exit is the model's decoder), trained jointly with the model
(:mod:`lab.compression.schemes.exit_training`); an input stops at the first exit whose
confidence reaches the set's threshold.

Exit rule, sequence-level for this LM: the confidence of a sequence at an exit is the mean
over its positions of the largest softmax probability (``lab.model.transformer.
confidence``); the input stops there if it is at least the threshold, else it runs on; the
last exit always stops. DeeBERT's entropy rule and PABEE's patience are per example of a
classifier; the mean max-probability keeps one number per sequence and one comparison.

One variant per DVFS level: one threshold each, chosen on the validation split so that at
most :data:`~lab.compression.schemes.exit_latency.MISS_BOUND` of the inputs stop at an exit
slower than the level's deadline, on the measured per-exit latency; thresholds never rise
as the frequency drops (``--thresholds`` fixes them instead, refused when they rise).
Accuracy per level is the test split's under its threshold, with the test split's exit
histogram beside it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lab.compression.schemes.exit_variants import scheme_build

if TYPE_CHECKING:
    from lab.compression.schemes.exit_variants import Design

VARIANT = "early-exit"


def design(layers: int) -> Design:
    """An exit after every layer from the first: heads ``exit_heads.1..layers-1``, then the
    decoder; one variant (its threshold chosen per level).

    >>> d = design(2)
    >>> d.exits, d.heads, d.exit_heads
    ((1, 2), ('exit_heads.1', 'decoder'), (1,))
    """
    from lab.compression.schemes.exit_variants import Design
    from lab.runtime.exits import ExitPlan

    exits = tuple(range(1, layers + 1))
    heads = (*(f"exit_heads.{k}" for k in exits[:-1]), "decoder")
    record = {
        "scheme": "early-exit",
        "exits": list(exits),
        "confidence": "mean over the sequence's positions of the largest softmax probability",
        "rule": "per level the highest threshold whose validation miss share (inputs "
        "stopping at an exit slower than the deadline) is at most MISS_BOUND; never above "
        "the level above's; none (not even 0): refused under deadlines the user gave, else "
        "0, recorded as missing it (provenance.unmet_deadlines)",
    }
    from lab.compression.schemes.exit_latency import MISS_BOUND

    record["miss_bound"] = MISS_BOUND
    plan = ExitPlan(exits, heads, 1.0)
    return Design("early-exit", exits[:-1], exits, heads, {VARIANT: plan}, record)


def _choose(c: Any, times: Any, d: Design, valid: Any) -> Any:
    from lab.compression.schemes.exit_latency import choose_thresholds

    return choose_thresholds(c, times, VARIANT, valid, c.opts.thresholds)


# The early-exit scheme's bundle: lab.compression.schemes' build(task, profile, opts, reporter)
build = scheme_build(design, _choose)
