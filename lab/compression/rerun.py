"""Comparing runs of one ``compress`` command: what a bundle's weights and choices are, in
a few digests and figures (:func:`bundle_summary`), and the README's table of such runs
(:func:`reruns_markdown`). ``scripts/reproducible.py`` makes the runs and records them
(``docs/compress-quick-reproducible.json``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lab.compression.reproducible import state_digest

DIGEST = 8  # hex digits of a digest shown in tables


def bundle_summary(path: Path) -> dict[str, Any]:
    """Digests of a bundle's dense weights, backbone, BP mask and search log, its figures
    (BP before fine-tuning, rBP, every set, BP on the backbone) and its choices
    (deadlines, level combinations allowed, the best child's levels), with the estimator,
    thread count and where the latency table came from."""
    import hashlib
    import json

    from lab.runtime.bundle import Bundle

    b = Bundle.load(path, scheme="rt3")  # BP, rBP and the search: RT3's records
    p = b.provenance
    table = p.get("latency_table") or {}
    sets = [e for e in b.entries.values() if e.freq_khz is not None]
    log = json.loads((Path(path) / "search_log.json").read_text())
    return {
        "estimator": p["estimator"],
        "threads": p.get("reproducibility", {}).get("threads"),
        "latency_source": table.get("source"),
        "dense_table_ms": table.get("dense_ms"),
        "dense": state_digest(b.dense),
        "backbone": state_digest(b.backbone),
        "bp_mask": state_digest(b.sets["bp"].masks()),
        "search_log": hashlib.sha256(json.dumps(log, sort_keys=True).encode()).hexdigest(),
        "bp_accuracy": b.reference["bp"]["accuracy"],
        "rbp_accuracy": b.baselines["rbp"]["accuracy"],
        "deadline_ms": list(p["deadlines"]["deadline_ms"].values()),
        "allowed": p["search"]["level_combinations"]["allowed"],
        "best_levels": p["search"]["best_child"]["levels"],
        "set_accuracy": [e.accuracy for e in sets],
        "bp_on_backbone": b.entries["bp"].accuracy,
    }


def reruns_markdown(doc: dict[str, Any]) -> str:
    """The README's table of ``doc["runs"]`` (name -> :func:`bundle_summary`)."""
    lines = [
        "| run | estimator | dense | BP mask | BP acc. % | deadlines ms | allowed | levels "
        "| sets acc. % | BP on backbone % | backbone | search log |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in doc["runs"].items():
        dl = " / ".join(f"{d:.3f}" for d in r["deadline_ms"])
        accs = " / ".join(f"{100 * a:.2f}" for a in r["set_accuracy"])
        levels = ", ".join(str(i) for i in r["best_levels"])
        lines.append(
            f"| {name} | {r['estimator']} | `{r['dense'][:DIGEST]}` | `{r['bp_mask'][:DIGEST]}` "
            f"| {100 * r['bp_accuracy']:.3f} | {dl} | {r['allowed']} | {levels} | {accs} "
            f"| {100 * r['bp_on_backbone']:.3f} | `{r['backbone'][:DIGEST]}` "
            f"| `{r['search_log'][:DIGEST]}` |"
        )
    return "\n".join(lines)
