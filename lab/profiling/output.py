"""Turn a profiling run into a validated device profile, the raw CSV and the calibration.

Two shapes:

- `measured_profile`: a board measured at its levels. The inference cluster's levels are
  those measured (read from the board's cpufreq), voltages come from the base profile,
  power per level and variant latencies per level are ``measured`` (board, date, tool,
  meter), the switch cost is measured, and battery, governor and deadlines come from the
  base profile (caps and deadlines moved onto measured levels, with a note).
- `host_profile`: this host measured at its one frequency, projected to a chosen board's
  levels by ``a + b/f`` (``modelled``, with the formula and its inputs), with everything
  else, power included, from that board's profile (``published`` there).
"""

from __future__ import annotations

import csv
import datetime as dt
import platform
import re
from pathlib import Path
from typing import Any

from device_profiles import DeviceProfile, profile_from_dict
from lab.profiling.calibrate import LatencyFit, PowerFit, fit_latency
from lab.profiling.procedure import Measurement, ProfileRun
from lab.profiling.stats import median
from lab.profiling.workload import VariantInfo


def tool_name() -> str:
    """``rt3lab X.Y.Z profile``."""
    from lab import __version__

    return f"rt3lab {__version__} profile"


def today() -> str:
    """UTC date, ISO."""
    return dt.datetime.now(dt.UTC).date().isoformat()


def slug(text: str) -> str:
    """A profile name from free text (lower case, ``[a-z0-9._-]``)."""
    s = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return s or "profile"


def busy_power_by_level(run: ProfileRun) -> dict[int, float]:
    """Mean busy power at each level, averaged over variants (levels with any reading)."""
    out: dict[int, list[float]] = {}
    for r in run.rows:
        if r.kind == "busy" and r.mean_power_w is not None:
            out.setdefault(r.level_khz, []).append(r.mean_power_w)
    return {k: sum(v) / len(v) for k, v in sorted(out.items())}


def idle_power_by_level(run: ProfileRun) -> dict[int, float]:
    """Idle baseline power at each level."""
    return {r.level_khz: r.mean_power_w for r in run.idle() if r.mean_power_w is not None}


def latency_fits(
    run: ProfileRun, names: list[str], memory_fraction: float | None = None
) -> dict[str, LatencyFit]:
    """``a + b/f`` per variant over the levels measured."""
    fits = {}
    for name in names:
        rows = [r for r in run.busy(name) if r.median_ms is not None]
        if rows:
            fits[name] = fit_latency(
                [r.level_khz for r in rows], [r.median_ms for r in rows], name, memory_fraction
            )
    return fits


def write_csv(path: str | Path, run: ProfileRun, board: str) -> Path:
    """The raw measurements, one row per (level, variant) and per idle baseline."""
    path = Path(path)
    fields = ["board", *(f for f in Measurement.__dataclass_fields__ if f != "samples_ms")]
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.DictWriter(fh, fieldnames=fields)
        w.writeheader()
        for r in run.rows:
            w.writerow({"board": board, **r.row()})
    return path


RUNS_FIELDS = ("board", "level_khz", "variant", "run", "latency_ms")


def write_runs_csv(path: str | Path, run: ProfileRun, board: str) -> Path:
    """Every timed run: one row per run of each (level, variant), its latency in ms as
    measured (at the level measured: in host mode the host's clock, not the profile's
    levels; ``lab.profiling.samples`` projects them as the profile does)."""
    path = Path(path)
    with path.open("w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(RUNS_FIELDS)
        for r in run.rows:
            if r.kind == "busy":
                for i, ms in enumerate(r.samples_ms):
                    w.writerow([board, r.level_khz, r.variant, i, repr(float(ms))])
    return path


def _nearest_at_or_below(k: int, levels: list[int]) -> int:
    below = [x for x in levels if x <= k]
    return max(below) if below else min(levels)


def _measured(meter: str, board: str, note: str | None = None) -> dict[str, Any]:
    rec = {"kind": "measured", "meter": meter, "date": today(), "tool": tool_name(), "board": board}
    if note:
        rec["note"] = note
    return rec


def _variant(info: VariantInfo, latency: list[dict[str, Any]], prov: Any) -> dict[str, Any]:
    v: dict[str, Any] = {"name": info.name}
    for key in ("accuracy", "sparsity", "nonzero_mults", "nonzero_adds"):
        val = getattr(info, key)
        if val is not None:
            v[key] = val
    v["latency"] = latency
    if len(v) > 2:
        v["provenance"] = prov
    return v


def _bundle_source(run: ProfileRun) -> dict[str, Any]:
    w = run.workload
    return {
        "kind": "measured",
        "meter": "none (bundle records)",
        "date": str(w.get("created") or today())[:10],
        "tool": "rt3lab compress (bundle.json)",
        "note": f"accuracy, sparsity and op counts from {w.get('bundle')}",
    }


def measured_profile(
    run: ProfileRun,
    base: DeviceProfile,
    board: str,
    infos: dict[str, VariantInfo],
    name: str | None = None,
    power_output: str = "levels",
    power_fit: PowerFit | None = None,
    flags: list[dict[str, Any]] | None = None,
) -> DeviceProfile:
    """The board's profile from a run at several levels (power needs a meter); ``flags``
    (from ``lab.profiling.sanity.settle``) go into the profile as they are."""
    meter = run.meter
    if meter is None:
        raise ValueError("--power: a measured profile needs a power source, got none")
    levels = sorted({r.level_khz for r in run.rows})
    data = base.model_dump(mode="json", exclude_none=True)
    cname = base.inference_cluster
    bc = base.cluster(cname)
    volts = None
    if bc.voltages_v is not None and all(k in bc.levels_khz for k in levels):
        volts = [bc.voltage_at(k) for k in levels]
    lat_meter, lat_note = _latency_timer(run)
    sources = dict(data.get("sources", {}))
    sources["rt3lab-power"] = _measured(meter, board)
    sources["rt3lab-latency"] = _measured(lat_meter, board, lat_note)
    sources["rt3lab-levels"] = _measured(
        f"cpufreq ({run.control.get('policy', run.control.get('backend'))})",
        board,
        "levels read from scaling_available_frequencies and set/read back"
        + ("; voltages_v from the base profile " + base.name if volts else ""),
    )
    sources["rt3lab-bundle"] = _bundle_source(run)
    cluster: dict[str, Any] = {
        "name": cname,
        "cores": list(bc.cores),
        "levels_khz": levels,
        "provenance": "rt3lab-levels",
    }
    if volts:
        cluster["voltages_v"] = volts
    if bc.transition_latency_us is not None:
        cluster["transition_latency_us"] = bc.transition_latency_us
        sources["rt3lab-levels"]["note"] += (
            f"; transition_latency_us from the base profile {base.name}"
        )
    power = _power_entry(run, levels, cname, power_output, power_fit, volts, board, sources)
    variants = [
        _variant(infos[v], _latency_rows(run, v, lat_meter, board, infos[v]), "rt3lab-bundle")
        for v in run_variant_names(run)
    ]
    data.update(
        name=name or slug(f"{board}-measured"),
        description=f"{board}: measured by {tool_name()} on {today()} with {meter}",
        sources=sources,
        clusters=[cluster],
        inference_cluster=cname,
        power=[power],
        variants=variants,
    )
    _move_to_levels(data, levels, cname)
    if run.switch_ms:
        data["switch_cost"] = _switch_cost(run, lat_meter, board)
    if flags:
        data["flags"] = flags
    return profile_from_dict(data, source="generated profile")


def _latency_timer(run: ProfileRun) -> tuple[str, str]:
    """What timed the latencies, and where (the provenance's meter and note)."""
    lat_meter = str(run.workload.get("timer") or "host clock (time.perf_counter)")
    n = run.workload.get("threads")
    threads = f"; {n} thread{'' if n == 1 else 's'}"
    if run.workload.get("engine") == "runner":
        return lat_meter, (
            f"timed by the rt3lab runner on {run.workload.get('runner_where')} itself "
            f"(no Python in the timed loop), pinned to CPUs {run.control.get('cpus')}{threads}"
        )
    if run.control.get("backend") == "adb":
        return lat_meter, (
            "timed on the host running rt3lab, not on the adb device: the device's clock was "
            f"set and its power measured, but the model ran here{threads}"
        )
    return lat_meter, f"pinned to CPUs {run.control.get('pinned_cpus')}{threads}"


def _power_entry(
    run: ProfileRun,
    levels: list[int],
    cname: str,
    power_output: str,
    power_fit: PowerFit | None,
    volts: list[float] | None,
    board: str,
    sources: dict[str, Any],
) -> dict[str, Any]:
    """The profile's power entry: measured per level, or the fitted model (``--power-output
    model``); the fit's source is added to ``sources``."""
    assert run.meter is not None
    busy = busy_power_by_level(run)
    idle = idle_power_by_level(run)
    missing = [k for k in levels if k not in busy or k not in idle]
    if missing:
        raise ValueError(f"no power measured at level(s) {missing} kHz")
    if power_output == "model":
        if power_fit is None or power_fit.c_eff_f is None or not volts:
            raise ValueError("--power-output model needs voltages for every level measured")
        if power_fit.c_eff_f <= 0:
            raise ValueError(
                f"--power-output model: fitted C = {power_fit.c_eff_f:.4g} F is not positive "
                "(measured power does not rise with V^2*f); use --power-output levels"
            )
        sources["rt3lab-power-fit"] = {
            "kind": "modelled",
            "formula": power_fit.formula(),
            "inputs": "rt3lab-power (busy power per level), voltages_v",
        }
        return {
            "cluster": cname,
            "model": {
                "p_static_w": max(power_fit.p_static_w, 0.0),
                "c_eff_f": power_fit.c_eff_f,
                "idle_w": sum(idle.values()) / len(idle),
                "provenance": "rt3lab-power-fit",
            },
        }
    lp = []
    for k in levels:
        row = {"freq_khz": k, "busy_w": busy[k], "idle_w": idle[k], "provenance": "rt3lab-power"}
        if idle[k] > busy[k]:  # within noise of each other: the schema wants idle <= busy
            row["idle_w"] = busy[k]
            row["provenance"] = _measured(
                run.meter, board, f"idle measured {idle[k]:.4f} W above busy; set equal to busy"
            )
        lp.append(row)
    if power_fit is not None:
        sources["rt3lab-power-fit"] = {
            "kind": "modelled",
            "formula": power_fit.formula(),
            "inputs": "rt3lab-power (busy power per level)",
            "note": "for comparison; the profile uses the measured levels",
        }
    return {"cluster": cname, "levels": lp}


def _latency_rows(
    run: ProfileRun, vname: str, lat_meter: str, board: str, info: VariantInfo | None = None
) -> list[dict[str, Any]]:
    """A variant's measured latency per level; a level that did not hold is flagged. An
    early-exit set's (``info.exit_histogram``): its exits' medians at the level, weighted
    by the histogram, as the latency's ``distribution``."""
    lat = []
    exits = _exit_names(run, vname, info)
    for r in run.busy(vname):
        prov: Any = "rt3lab-latency"
        if not r.freq_ok or r.throttled:
            prov = _measured(
                lat_meter,
                board,
                f"FLAGGED: set {r.level_khz} kHz, read back {r.readback_khz}/"
                f"{r.readback_end_khz} kHz, throttled={r.throttled}",
            )
        entry = {"freq_khz": r.level_khz, "latency_ms": r.median_ms, "provenance": prov}
        per = [
            next((e.median_ms for e in run.busy(n) if e.level_khz == r.level_khz), None)
            for n in exits
        ]
        if exits and info is not None and info.exit_histogram and None not in per:
            entry.update(_distribution(per, info.exit_histogram))  # type: ignore[arg-type]
        lat.append(entry)
    return lat


def _exit_names(run: ProfileRun, vname: str, info: VariantInfo | None) -> list[str]:
    """The per-exit variants measured for an early-exit set (``SET@exitI``), in exit
    order; none unless every exit of its histogram was measured."""
    from lab.profiling.workload import EXIT_SEP

    if info is None or info.exit_histogram is None:
        return []
    names = [f"{vname}{EXIT_SEP}{i}" for i in range(len(info.exit_histogram))]
    measured = set(all_variant_names(run))
    return names if all(n in measured for n in names) else []


def _distribution(per_exit_ms: list[float], histogram: tuple[float, ...]) -> dict[str, Any]:
    """``latency_ms`` (the share-weighted mean) and ``distribution`` (the exits with a
    share above 0: the profile's points need one) of one level.

    >>> _distribution([1.0, 3.0], (0.75, 0.25))
    {'latency_ms': 1.5, 'distribution': [{'latency_ms': 1.0, 'share': 0.75},
                                         {'latency_ms': 3.0, 'share': 0.25}]}
    """
    import math

    points = [(ms, h) for ms, h in zip(per_exit_ms, histogram, strict=True) if h > 0]
    total = math.fsum(h for _, h in points)
    dist = [{"latency_ms": ms, "share": h / total} for ms, h in points]
    mean = math.fsum(p["latency_ms"] * p["share"] for p in dist)
    return {"latency_ms": mean, "distribution": dist}


def _switch_cost(run: ProfileRun, lat_meter: str, board: str) -> dict[str, Any]:
    """The measured switch cost: the median of the switches timed."""
    on_runner = run.workload.get("engine") == "runner"
    return {
        "time_ms": median(run.switch_ms),
        "provenance": _measured(
            lat_meter,
            board,
            f"median of the runner's --switch-to medians for {len(run.switch_ms)} set "
            f"pairs on {run.workload.get('runner_where')}"
            if on_runner
            else f"median of {len(run.switch_ms)} switches",
        ),
    }


def all_variant_names(run: ProfileRun) -> list[str]:
    """Variant names in the order measured, an early-exit set's per-exit ones included."""
    seen: list[str] = []
    for r in run.rows:
        if r.kind == "busy" and r.variant not in seen:
            seen.append(r.variant)
    return seen


def run_variant_names(run: ProfileRun) -> list[str]:
    """The profile's variants in the order measured (an early-exit set's per-exit
    variants, ``SET@exitI``, are part of its latency, not variants of their own)."""
    from lab.profiling.workload import exit_variant

    return [n for n in all_variant_names(run) if exit_variant(n)[1] is None]


def _move_to_levels(data: dict[str, Any], levels: list[int], cname: str) -> None:
    """Governor caps and deadlines of the base moved onto the measured levels."""
    gov = data["governor"]
    gov["cluster"] = cname
    moved = []
    start = _nearest_at_or_below(gov["start_khz"], levels)
    if start != gov["start_khz"]:
        moved.append(f"start {gov['start_khz']}->{start}")
    gov["start_khz"] = start
    for step in gov.get("steps", []):
        cap = _nearest_at_or_below(step["cap_khz"], levels)
        if cap != step["cap_khz"]:
            moved.append(f"cap {step['cap_khz']}->{cap}")
        step["cap_khz"] = cap
    if moved:
        gov["provenance"] = _note(
            data, gov["provenance"], "levels moved to measured: " + ", ".join(moved)
        )
    wl = data.get("workload")
    if wl:
        out: dict[int, float] = {}
        moved = []
        for tc in wl.get("timing_constraints", []):
            k = _nearest_at_or_below(tc["freq_khz"], levels)
            if k != tc["freq_khz"]:
                moved.append(f"{tc['freq_khz']}->{k}")
            out[k] = min(out.get(k, tc["deadline_ms"]), tc["deadline_ms"])
        wl["timing_constraints"] = [
            {"freq_khz": k, "deadline_ms": v} for k, v in sorted(out.items())
        ]
        if moved and "provenance" in wl:
            wl["provenance"] = _note(
                data, wl["provenance"], "levels moved to measured: " + ", ".join(moved)
            )


HOST_DEADLINES = ("bundle", "dense-top", "scaled", "base")


def deadline_mode(deadlines: str, bundle_deadlines: dict[str, Any] | None) -> str:
    """The host profile's deadline rule: ``bundle`` follows the rule the bundle was
    compressed under (``scaled``, ``dense-top``; its own ms values when they were given
    explicitly; ``base`` for ``profile``, or a bundle that records none).

    >>> deadline_mode("bundle", {"mode": "dense-top"}), deadline_mode("bundle", None)
    ('dense-top', 'base')
    >>> deadline_mode("scaled", {"mode": "dense-top"})
    'scaled'
    """
    if deadlines not in HOST_DEADLINES:
        raise ValueError(
            f"--deadlines: expected one of {', '.join(HOST_DEADLINES)}, got {deadlines!r}"
        )
    if deadlines != "bundle":
        return deadlines
    mode = (bundle_deadlines or {}).get("mode")
    return mode if mode in ("scaled", "dense-top", "explicit") else "base"


def _scale_deadlines(data: dict[str, Any], fit: LatencyFit, who: str, why: str) -> None:
    """Scale the timing constraints so ``who`` (BP: RT3's setup; dense: the application's
    deadline is what the unpruned model meets at full clock) exactly meets the highest
    level's constraint. The top level's deadline is set to that latency itself, so the
    anchor meets it to the last bit."""
    wl = data.get("workload")
    constraints = (wl or {}).get("timing_constraints") or []
    if not constraints:
        return
    top = max(constraints, key=lambda tc: tc["freq_khz"])
    anchor = fit.latency_ms(top["freq_khz"])
    scale = anchor / top["deadline_ms"]
    before = ", ".join(f"{tc['freq_khz']}: {tc['deadline_ms']:g}" for tc in constraints)
    for tc in constraints:
        tc["deadline_ms"] = anchor if tc is top else tc["deadline_ms"] * scale
    wl["provenance"] = {
        "kind": "modelled",
        "formula": (
            f"deadline_ms = base deadline x {scale:.6g}, where {scale:.6g} = {who}'s projected "
            f"latency at {top['freq_khz']} kHz ({anchor:.4f} ms) / the base deadline there "
            f"({top['deadline_ms'] / scale:g} ms): {who} exactly meets the highest level's "
            f"constraint, {why}"
        ),
        "inputs": f"base timing constraints (kHz: ms) {before}",
    }


def _bundle_deadlines(data: dict[str, Any], recorded: dict[str, Any]) -> None:
    """The ms deadlines the bundle was compressed under (given with ``--deadlines``), on the
    levels they name."""
    wl = data.get("workload")
    constraints = (wl or {}).get("timing_constraints") or []
    given = {int(k): float(v) for k, v in (recorded.get("deadline_ms") or {}).items()}
    for tc in constraints:
        if tc["freq_khz"] in given:
            tc["deadline_ms"] = given[tc["freq_khz"]]
    if constraints:
        wl["provenance"] = {
            "kind": "modelled",
            "formula": "deadline_ms as given to rt3lab compress --deadlines (the bundle's)",
            "inputs": f"bundle deadlines (kHz: ms) {given}",
        }


def _note(data: dict[str, Any], prov: Any, note: str) -> dict[str, Any]:
    rec = dict(data["sources"][prov]) if isinstance(prov, str) else dict(prov)
    rec["note"] = (rec.get("note", "") + "; " if rec.get("note") else "") + note
    return rec


def host_profile(
    run: ProfileRun,
    base: DeviceProfile,
    infos: dict[str, VariantInfo],
    host_khz: int,
    memory_fraction: float | None = None,
    name: str | None = None,
    deadlines: str = "scaled",
    flags: list[dict[str, Any]] | None = None,
    bundle_deadlines: dict[str, Any] | None = None,
) -> tuple[DeviceProfile, dict[str, LatencyFit]]:
    """This host's latencies projected to ``base``'s levels, with ``base``'s power.

    Each latency's provenance says ``measured on HOST at F kHz, projected by a + b/f``;
    ``flags`` (from ``lab.profiling.sanity.settle``) go into the profile as they are.

    ``deadlines="scaled"`` (when the run has a ``bp`` variant) multiplies ``base``'s timing
    constraints so that BP exactly meets the highest level's, as in RT3's setup, where the
    115 ms constraint at 1.4 GHz is BP's own latency; ``"dense-top"`` (when it has
    ``dense``) so that the unpruned model does; ``"base"`` keeps them as they are;
    ``"bundle"`` follows ``bundle_deadlines`` (the bundle's ``provenance.deadlines``).
    """
    mode = deadline_mode(deadlines, bundle_deadlines)
    data = base.model_dump(mode="json", exclude_none=True)
    cpu = platform.processor() or "cpu"
    host = f"host {platform.node() or 'unknown'} ({platform.machine()}, {cpu})"
    names = run_variant_names(run)
    fits = latency_fits(run, names, memory_fraction)
    sources = dict(data.get("sources", {}))
    sources["rt3lab-bundle"] = _bundle_source(run)
    variants = []
    for vname in names:
        fit = fits[vname]
        measured = run.busy(vname)[0]
        prov = {
            "kind": "modelled",
            "formula": fit.formula(),
            "inputs": (
                f"median {measured.median_ms:.4f} ms [{measured.ci_low_ms:.4f}, "
                f"{measured.ci_high_ms:.4f}] over {measured.runs} runs measured on {host} at "
                f"{host_khz} kHz by {tool_name()} on {today()} (threads "
                f"{run.workload.get('threads')}, seq {run.workload.get('seq_len')}"
                + (f", timed by the {run.workload['timer']}" if run.workload.get("timer") else "")
                + ")"
            ),
            "note": f"measured on {host} at {host_khz} kHz, projected by a + b/f",
        }
        lat = [
            {"freq_khz": k, "latency_ms": fit.latency_ms(k), "provenance": prov}
            for k in base.levels_khz
        ]
        exits = _exit_names(run, vname, infos[vname])
        if exits:  # an early-exit set: each exit's fit at the level, weighted by its histogram
            per = latency_fits(run, exits, memory_fraction)
            hist = infos[vname].exit_histogram
            note = (
                f"{prov['note']}; early exit: the mean over the bundle's test exit histogram "
                f"of its exits' latencies ({', '.join(exits)}, each measured and projected "
                "alike), its distribution beside it"
            )
            prov = {**prov, "note": note}
            for e in lat:
                e["provenance"] = prov
                e.update(_distribution([per[n].latency_ms(e["freq_khz"]) for n in exits], hist))  # type: ignore[arg-type]
        variants.append(_variant(infos[vname], lat, "rt3lab-bundle"))
    data.update(
        name=name or slug(f"{base.name}-host"),
        description=(
            f"{base.name} with latencies measured on {host} and projected to its levels by "
            f"a + b/f; power, battery and governor from {base.name}"
        ),
        sources=sources,
        variants=variants,
    )
    if flags:
        data["flags"] = flags
    if mode == "scaled" and "bp" in fits:
        _scale_deadlines(data, fits["bp"], "BP", "as RT3's 115 ms is its BP latency at 1.4 GHz")
    elif mode == "dense-top" and "dense" in fits:
        _scale_deadlines(
            data,
            fits["dense"],
            "dense",
            "the application's deadline is what the unpruned "
            "model meets at full clock (rt3lab compress --deadlines dense-top)",
        )
    elif mode == "explicit" and bundle_deadlines:
        _bundle_deadlines(data, bundle_deadlines)
    if run.switch_ms:
        data["switch_cost"] = {
            "time_ms": median(run.switch_ms),
            "provenance": _measured(
                "host clock (time.perf_counter)", host, f"median of {len(run.switch_ms)} switches"
            ),
        }
    return profile_from_dict(data, source="generated host profile"), fits
