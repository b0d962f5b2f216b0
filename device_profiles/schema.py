"""The device-profile schema: one board's DVFS levels, power, battery, governor and variants.

Every number in a profile is covered by a provenance record: ``measured`` (meter, date,
tool), ``published`` (source) or ``modelled`` (formula). Records that hold numbers carry a
``provenance`` field, either inline or as the key of an entry in the profile's ``sources``.
"""

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

SCHEMA_VERSION = 1


class _Strict(BaseModel):
    """Base: unknown keys are errors, floats must be finite, no type coercion.

    ``strict`` means a boolean is not a number (``capacity_mah: true`` is refused, not read
    as 1) and a string is not a number; an integer is still accepted where a float is
    expected.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, strict=True)


def _range(lo: float, hi: float, *, closed_low: bool = False) -> Any:
    """A finite float in (lo, hi] (or [lo, hi] with ``closed_low``)."""
    low = {"ge": lo} if closed_low else {"gt": lo}
    return Annotated[float, Field(le=hi, allow_inf_nan=False, **low)]


# Physical bounds. Each is wide (about 10x or more beyond the largest real value in the
# cited reference) so that any real board fits, and narrow enough that the arithmetic the
# simulator does on them stays finite. The README's "Bounds" table lists them with sources.
PositiveFloat = Annotated[float, Field(gt=0, allow_inf_nan=False)]
NonNegFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]
#: DVFS level: 1 kHz .. 10 GHz (devices.md: fastest shipped level 2.6496 GHz, Pixel 3).
MAX_KHZ = 10_000_000
Khz = Annotated[int, Field(gt=0, le=MAX_KHZ)]
#: CPU core voltage (devices.md: 0.8438 V Pi 4 .. 1.3125 V Exynos 5422 at 2 GHz).
CoreVolts = _range(0.0, 2.0)
#: Board or cluster power, W (devices.md: 12.64 W Odroid HC2 at 2 GHz, the largest).
Watts = _range(0.0, 1000.0)
WattsOrZero = _range(0.0, 1000.0, closed_low=True)
#: Effective switched capacitance, F (devices.md: Linux energy model A15 310 uW/MHz/V^2 =
#: 3.1e-10 F per core; the Odroid fit is 2.3e-9 F for four cores).
Farads = _range(0.0, 1e-7)
#: Battery capacity, mAh (battery.md: ECM_Example's 100 Ah cell = 1e5 mAh, the largest).
CapacityMah = _range(0.0, 1e6)
#: Battery or OCV voltage, V (battery.md: Li-ion cell 3.2-4.2 V; 60 V covers a 14S pack).
BatteryVolts = _range(0.0, 60.0)
#: Cell resistance, ohm (battery.md: R0 0.46-1.68 mOhm for 100 Ah, about 13 mOhm scaled to
#: a 3 Ah phone cell; 100 ohm is above any coin cell's internal resistance).
Ohms = _range(0.0, 100.0)
#: RC-pair capacitance, F (battery.md: C1 about 1500 F for a phone cell; tau 30 s with the
#: 100 Ah cell's R1 = 0.6 mOhm is 5e4 F).
RcFarads = _range(0.0, 1e6)
#: KiBaM rate constant, 1/s (battery.md: k = 0.0167 per minute = 2.8e-4 /s).
RatePerS = _range(0.0, 1.0)
#: Deadlines and latencies, ms (rt3.md: RT3's deadlines 94-115 ms); at most one hour.
Millis = _range(0.0, 3.6e6)
#: Frequency-transition latency, us (devices.md: 140 us Exynos 5422); at most 1 s.
Micros = _range(0.0, 1e6, closed_low=True)
#: A pattern-set switch: at most 60 s, and at most 1000 W for 60 s.
SwitchMillis = _range(0.0, 6e4, closed_low=True)
SwitchJoules = _range(0.0, 6e4, closed_low=True)
#: Non-zero operations per inference (rt3-paper.yaml: 5.2e7 for the dense LM); at most 1e15.
OpCount = _range(0.0, 1e15, closed_low=True)
#: Peukert rating time, h (battery.md: 20 h is the usual rating); at most 1000 h.
Hours = _range(0.0, 1000.0)
#: Op-count latency coefficients (rt3.md: about 0.0144 ms per 1e4 operations at 3 GHz).
MsPer1e4Ops = _range(0.0, 1000.0)
Ghz = _range(0.0, MAX_KHZ / 1e6)


class Measured(_Strict):
    """A number measured on a real board."""

    kind: Literal["measured"]
    meter: str = Field(min_length=1, description="meter or sensor, e.g. 'um34c', 'rapl'")
    date: str = Field(min_length=1, description="ISO date of the measurement")
    tool: str = Field(min_length=1, description="tool and version that measured it")
    board: str | None = None
    note: str | None = None


class Published(_Strict):
    """A number taken from a public source (paper, datasheet, kernel tree, benchmark)."""

    kind: Literal["published"]
    source: str = Field(min_length=1)
    note: str | None = None


class Modelled(_Strict):
    """A number computed by a model from other numbers."""

    kind: Literal["modelled"]
    formula: str = Field(min_length=1)
    inputs: str | None = Field(default=None, description="where the model's inputs come from")
    note: str | None = None


Provenance = Annotated[Measured | Published | Modelled, Field(discriminator="kind")]
ProvenanceRef = str | Provenance


class Board(_Strict):
    """The board and its SoC."""

    name: str = Field(min_length=1)
    soc: str = Field(min_length=1)
    description: str | None = None


class Cluster(_Strict):
    """A CPU cluster: its DVFS levels (kHz, strictly increasing) and their voltages."""

    name: str = Field(min_length=1)
    cores: list[Annotated[int, Field(ge=0, le=4095)]] = Field(default_factory=list)
    levels_khz: list[Khz] = Field(min_length=1)
    voltages_v: list[CoreVolts] | None = None
    transition_latency_us: Micros | None = Field(
        default=None, description="time a frequency change takes; None when unknown"
    )
    provenance: ProvenanceRef

    @field_validator("levels_khz")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        for i in range(1, len(v)):
            if v[i] <= v[i - 1]:
                raise ValueError(
                    f"must be strictly increasing, got {v[i - 1]} then {v[i]} at index {i}"
                )
        return v

    @model_validator(mode="after")
    def _voltages_match(self) -> Cluster:
        if self.voltages_v is not None and len(self.voltages_v) != len(self.levels_khz):
            raise ValueError(
                f"voltages_v has {len(self.voltages_v)} entries but levels_khz has "
                f"{len(self.levels_khz)}: one voltage per level expected"
            )
        return self

    def voltage_at(self, freq_khz: int) -> float | None:
        """The voltage at a level, or None when the profile gives none."""
        if self.voltages_v is None:
            return None
        return self.voltages_v[self.levels_khz.index(freq_khz)]


class LevelPower(_Strict):
    """Measured (or published) power of the board at one level."""

    freq_khz: Khz
    busy_w: Watts
    idle_w: WattsOrZero
    provenance: ProvenanceRef

    @model_validator(mode="after")
    def _idle_below_busy(self) -> LevelPower:
        if self.idle_w > self.busy_w:
            raise ValueError(f"idle_w ({self.idle_w}) exceeds busy_w ({self.busy_w})")
        return self


class PowerModel(_Strict):
    """CMOS power model: busy P = p_static_w + c_eff_f * V^2 * f(Hz); idle P = idle_w."""

    p_static_w: WattsOrZero
    c_eff_f: Farads = Field(description="effective switched capacitance, farads")
    idle_w: WattsOrZero | None = Field(default=None, description="defaults to p_static_w")
    provenance: ProvenanceRef


class ClusterPower(_Strict):
    """Power of one cluster: either per-level numbers or a model, not both."""

    cluster: str
    levels: list[LevelPower] | None = None
    model: PowerModel | None = None

    @model_validator(mode="after")
    def _one_of(self) -> ClusterPower:
        if (self.levels is None) == (self.model is None):
            raise ValueError("give exactly one of 'levels' (per-level power) or 'model'")
        return self


class Peukert(_Strict):
    """Peukert parameters: t = H (C / (I H))^k, rated at a discharge of ``rated_hours``."""

    k: Annotated[float, Field(ge=1.0, le=1.5, allow_inf_nan=False)]
    rated_hours: Hours = 20.0
    provenance: ProvenanceRef | None = Field(default=None, description="else the battery's")


class KiBaM(_Strict):
    """Kinetic battery model: available-charge fraction c, rate constant k (1/s)."""

    c: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    k_per_s: RatePerS
    provenance: ProvenanceRef | None = Field(default=None, description="else the battery's")


class RCPair(_Strict):
    """One RC pair of a Thevenin circuit."""

    r_ohm: Ohms
    c_f: RcFarads


class OCVTable(_Strict):
    """Open-circuit voltage against state of charge (SoC strictly increasing, 0..1)."""

    soc: list[Fraction] = Field(min_length=2)
    ocv_v: list[BatteryVolts] = Field(min_length=2)

    @model_validator(mode="after")
    def _shape(self) -> OCVTable:
        if len(self.soc) != len(self.ocv_v):
            raise ValueError(
                f"soc has {len(self.soc)} points but ocv_v has {len(self.ocv_v)}: "
                "one voltage per point expected"
            )
        for i in range(1, len(self.soc)):
            if self.soc[i] <= self.soc[i - 1]:
                raise ValueError(f"soc must be strictly increasing, got {self.soc}")
        if self.soc[0] != 0.0 or self.soc[-1] != 1.0:
            raise ValueError("soc must span 0.0 to 1.0")
        for i in range(1, len(self.ocv_v)):
            if self.ocv_v[i] < self.ocv_v[i - 1]:
                raise ValueError(
                    f"ocv_v must not decrease as soc rises, got {self.ocv_v[i - 1]} then "
                    f"{self.ocv_v[i]} at index {i}"
                )
        if self.ocv_v[-1] <= self.ocv_v[0]:
            raise ValueError("ocv_v must rise from soc 0 to soc 1")
        return self


class Thevenin(_Strict):
    """Thevenin equivalent circuit: R0, 1 or 2 RC pairs, an OCV table and a cutoff."""

    r0_ohm: Ohms
    rc: list[RCPair] = Field(min_length=1, max_length=2)
    ocv: OCVTable
    cutoff_v: BatteryVolts
    provenance: ProvenanceRef | None = Field(default=None, description="else the battery's")

    @model_validator(mode="after")
    def _cutoff(self) -> Thevenin:
        if self.cutoff_v >= max(self.ocv.ocv_v):
            raise ValueError(
                f"cutoff_v ({self.cutoff_v}) must be below the full OCV ({max(self.ocv.ocv_v)})"
            )
        return self


class Battery(_Strict):
    """The battery: capacity, nominal voltage, chemistry and the model to simulate it with.

    ``model`` names a battery model the simulator has registered (built in: ``ideal``,
    ``peukert``, ``kibam``, ``thevenin``); the simulator checks the name, so a model
    registered outside this package needs no change here. A model with a parameter
    section below (``peukert``, ``kibam``, ``thevenin``) needs it; the others read only
    capacity and nominal voltage.
    """

    capacity_mah: CapacityMah
    nominal_voltage_v: BatteryVolts
    chemistry: str = Field(min_length=1)
    model: str = Field(default="ideal", pattern=r"^[a-z][a-z0-9_-]*$")
    peukert: Peukert | None = None
    kibam: KiBaM | None = None
    thevenin: Thevenin | None = None
    provenance: ProvenanceRef

    @model_validator(mode="after")
    def _model_params(self) -> Battery:
        needs_params = self.model in type(self).model_fields
        if needs_params and getattr(self, self.model) is None:
            raise ValueError(f"model is '{self.model}' but no '{self.model}' parameters given")
        return self

    @property
    def energy_j(self) -> float:
        """Nominal energy: capacity (mAh) x 3.6 x nominal voltage."""
        return self.capacity_mah * 3.6 * self.nominal_voltage_v


class GovernorStep(_Strict):
    """Below ``battery_below`` (fraction of battery left), cap the frequency at ``cap_khz``."""

    battery_below: Annotated[float, Field(gt=0, lt=1, allow_inf_nan=False)]
    cap_khz: Khz


class Governor(_Strict):
    """Battery-level thresholds mapped to frequency caps.

    ``basis: energy`` measures the battery left as the fraction of nominal energy not yet
    drawn (RT3's 50/30/20 energy split); ``basis: soc`` uses the battery model's state of
    charge (Android's battery saver).
    """

    cluster: str
    policy: Literal["thresholds", "fixed"] = "thresholds"
    basis: Literal["energy", "soc"] = "soc"
    start_khz: Khz
    steps: list[GovernorStep] = Field(default_factory=list)
    provenance: ProvenanceRef

    @field_validator("steps")
    @classmethod
    def _descending(cls, v: list[GovernorStep]) -> list[GovernorStep]:
        for i in range(1, len(v)):
            if v[i].battery_below >= v[i - 1].battery_below:
                raise ValueError("battery_below thresholds must be strictly decreasing")
        return v

    @model_validator(mode="after")
    def _fixed_has_no_steps(self) -> Governor:
        if self.policy == "fixed" and self.steps:
            raise ValueError("a 'fixed' governor takes no steps")
        return self


class TimingConstraint(_Strict):
    """The inference deadline at one level."""

    freq_khz: Khz
    deadline_ms: Millis


class OpCountLatency(_Strict):
    """RT3's analytical latency model from non-zero operation counts.

    latency_ms = (mults / 1e4 * ms_per_1e4_mults + adds / 1e4 * ms_per_1e4_adds)
                 * reference_ghz / f_ghz
    """

    kind: Literal["op-count"] = "op-count"
    ms_per_1e4_mults: MsPer1e4Ops
    ms_per_1e4_adds: MsPer1e4Ops
    reference_ghz: Ghz
    provenance: ProvenanceRef

    def latency_ms(self, mults: float, adds: float, freq_khz: int) -> float:
        """Modelled latency of a variant with these operation counts at ``freq_khz``."""
        base = mults / 1e4 * self.ms_per_1e4_mults + adds / 1e4 * self.ms_per_1e4_adds
        return base * self.reference_ghz / (freq_khz / 1e6)


#: Shares of a latency distribution must sum to 1 within this; ``latency_ms`` must equal
#: their weighted mean within this, relative.
SHARE_TOLERANCE = 1e-6


class LatencyPoint(_Strict):
    """One point of a latency distribution: an exit's latency and its share of inputs."""

    latency_ms: Millis
    share: Annotated[float, Field(gt=0, le=1, allow_inf_nan=False)]


def _mean_ms(points: list[LatencyPoint]) -> float:
    return math.fsum(p.latency_ms * p.share for p in points)


class LevelLatency(_Strict):
    """A variant's latency at one level; an early-exit variant's may add its
    ``distribution`` (one point per exit: latency and share of inputs), whose
    share-weighted mean ``latency_ms`` must equal (within 1e-6 relative)."""

    freq_khz: Khz
    latency_ms: Millis
    distribution: list[LatencyPoint] | None = Field(
        default=None, min_length=1, description="per exit: latency_ms and share, shares sum 1"
    )
    provenance: ProvenanceRef

    @field_validator("distribution")
    @classmethod
    def _shares(cls, v: list[LatencyPoint] | None) -> list[LatencyPoint] | None:
        if v is not None:
            total = math.fsum(p.share for p in v)
            if abs(total - 1.0) > SHARE_TOLERANCE:
                raise ValueError(
                    f"shares sum to {total:.9g}; expected 1 within {SHARE_TOLERANCE:g}"
                )
        return v

    @model_validator(mode="after")
    def _mean(self) -> LevelLatency:
        if self.distribution is not None:
            mean = _mean_ms(self.distribution)
            if abs(mean - self.latency_ms) > SHARE_TOLERANCE * self.latency_ms:
                raise ValueError(
                    f"latency_ms is {self.latency_ms:g} but distribution's share-weighted "
                    f"mean is {mean:.9g}; expected equal within {SHARE_TOLERANCE:g} relative"
                )
        return self


class EarlyExit(_Strict):
    """An early-exit variant's exits, as its bundle measured them on the host: the layer
    of each exit head (increasing), the share of test inputs leaving at each (summing to
    1), the latency of an inference leaving there, and the confidence threshold. Without
    a measured ``distribution`` at a level, the simulator scales these latencies so their
    histogram-weighted mean is the level's latency."""

    exits: list[Annotated[int, Field(ge=0, le=1_000_000)]] = Field(min_length=1)
    histogram: list[Fraction] = Field(min_length=1)
    latency_ms: list[Millis] = Field(min_length=1)
    threshold: Annotated[float, Field(allow_inf_nan=False)] | None = None

    @model_validator(mode="after")
    def _aligned(self) -> EarlyExit:
        n = len(self.exits)
        if len(self.histogram) != n or len(self.latency_ms) != n:
            raise ValueError(
                f"exits has {n} entries, histogram {len(self.histogram)}, latency_ms "
                f"{len(self.latency_ms)}: one of each per exit expected"
            )
        for i in range(1, n):
            if self.exits[i] <= self.exits[i - 1]:
                raise ValueError(f"exits must be strictly increasing, got {self.exits}")
        total = math.fsum(self.histogram)
        if abs(total - 1.0) > SHARE_TOLERANCE:
            raise ValueError(
                f"histogram sums to {total:.9g}; expected 1 within {SHARE_TOLERANCE:g}"
            )
        if not any(h > 0 for h in self.histogram):
            raise ValueError("histogram: no exit has a share > 0")
        return self


class Variant(_Strict):
    """A model variant (pattern set) with its accuracy, operation counts and latencies."""

    name: str = Field(min_length=1)
    accuracy: Fraction | None = None
    sparsity: Annotated[float, Field(ge=0, lt=1, allow_inf_nan=False)] | None = None
    nonzero_mults: OpCount | None = None
    nonzero_adds: OpCount | None = None
    latency: list[LevelLatency] = Field(default_factory=list)
    early_exit: EarlyExit | None = Field(
        default=None, description="an early-exit variant's exits (its bundle's)"
    )
    provenance: ProvenanceRef | None = Field(
        default=None, description="covers accuracy, sparsity, operation counts and exits"
    )

    @model_validator(mode="after")
    def _provenance_if_numbers(self) -> Variant:
        has_numbers = any(
            x is not None
            for x in (
                self.accuracy,
                self.sparsity,
                self.nonzero_mults,
                self.nonzero_adds,
                self.early_exit,
            )
        )
        if has_numbers and self.provenance is None:
            raise ValueError(
                "a variant with accuracy, sparsity, op counts or exits needs provenance"
            )
        return self

    def latency_at(self, freq_khz: int) -> float | None:
        """Latency (ms) at a level from the table, or None when the table has no entry."""
        for row in self.latency:
            if row.freq_khz == freq_khz:
                return row.latency_ms
        return None


class SwitchCost(_Strict):
    """What one pattern-set switch costs."""

    time_ms: SwitchMillis
    energy_j: SwitchJoules | None = Field(
        default=None, description="defaults to busy power x time at the current level"
    )
    provenance: ProvenanceRef


class MeasurementFlag(_Strict):
    """A measurement that stayed odd after re-measuring (``lab.profiling.sanity``): the
    profile keeps it, and says so here."""

    variant: str | None = None
    freq_khz: Khz | None = None
    rule: str = Field(min_length=1, description="sparser-slower, wide-ci or outlier")
    detail: str = Field(min_length=1)


class Workload(_Strict):
    """The inference workload the profile is meant for (sequence length and deadlines)."""

    model: str = Field(min_length=1)
    sequence_length: Annotated[int, Field(gt=0, le=1_000_000)] | None = None
    timing_constraints: list[TimingConstraint] = Field(default_factory=list)
    provenance: ProvenanceRef | None = None


class DeviceProfile(_Strict):
    """One board, as data: levels, power, battery, governor, latencies, with provenance."""

    schema_version: Literal[1] = SCHEMA_VERSION
    name: str = Field(min_length=1, pattern=r"^[a-z0-9][a-z0-9._-]*$")
    description: str | None = None
    board: Board
    sources: dict[str, Provenance] = Field(default_factory=dict)
    clusters: list[Cluster] = Field(min_length=1)
    inference_cluster: str
    power: list[ClusterPower] = Field(min_length=1)
    battery: Battery
    governor: Governor
    workload: Workload | None = None
    latency_model: OpCountLatency | None = None
    variants: list[Variant] = Field(default_factory=list)
    switch_cost: SwitchCost | None = None
    flags: list[MeasurementFlag] | None = Field(
        default=None, description="measurements still odd after re-measuring"
    )

    @model_validator(mode="after")
    def _cross_references(self) -> DeviceProfile:
        _check_refs(self)
        return self

    # ---- lookups -------------------------------------------------------------------
    def _named(self, items: list[Any], name: str, what: str) -> Any:
        for item in items:
            if item.name == name:
                return item
        raise KeyError(f"profile {self.name!r} has no {what} {name!r}")

    def cluster(self, name: str) -> Cluster:
        """The cluster called ``name``."""
        return self._named(self.clusters, name, "cluster")

    @property
    def levels_khz(self) -> list[int]:
        """Levels of the inference cluster, ascending."""
        return list(self.cluster(self.inference_cluster).levels_khz)

    def resolve(self, ref: ProvenanceRef) -> Measured | Published | Modelled:
        """The provenance record behind ``ref`` (a key of ``sources`` or an inline record)."""
        if isinstance(ref, str):
            return self.sources[ref]
        return ref

    def power_at(self, freq_khz: int, cluster: str | None = None) -> tuple[float, float]:
        """(busy_w, idle_w) of ``cluster`` (default: inference cluster) at ``freq_khz``."""
        name = cluster or self.inference_cluster
        entry = next(p for p in self.power if p.cluster == name)
        if entry.levels is not None:
            for lp in entry.levels:
                if lp.freq_khz == freq_khz:
                    return lp.busy_w, lp.idle_w
            raise KeyError(f"profile {self.name!r}: no power for {name} at {freq_khz} kHz")
        model = entry.model
        assert model is not None
        volts = self.cluster(name).voltage_at(freq_khz)
        if volts is None:
            raise KeyError(f"profile {self.name!r}: power model needs a voltage at {freq_khz} kHz")
        busy = model.p_static_w + model.c_eff_f * volts**2 * freq_khz * 1e3
        idle = model.p_static_w if model.idle_w is None else model.idle_w
        return busy, idle

    def deadline_ms(self, freq_khz: int) -> float | None:
        """The timing constraint at a level, or None when the profile gives none."""
        if self.workload is None:
            return None
        for tc in self.workload.timing_constraints:
            if tc.freq_khz == freq_khz:
                return tc.deadline_ms
        return None

    def variant(self, name: str) -> Variant:
        """The variant called ``name``."""
        return self._named(self.variants, name, "variant")


def _check_refs(p: DeviceProfile) -> None:
    """Cross-field checks: clusters, levels and provenance keys that must exist."""
    names = [c.name for c in p.clusters]
    if len(set(names)) != len(names):
        raise ValueError(f"clusters: names must be unique, got {names}")
    if p.inference_cluster not in names:
        raise ValueError(f"inference_cluster: {p.inference_cluster!r} is not one of {names}")
    for i, cp in enumerate(p.power):
        if cp.cluster not in names:
            raise ValueError(f"power[{i}].cluster: {cp.cluster!r} is not one of {names}")
        levels = p.cluster(cp.cluster).levels_khz
        if cp.levels is not None:
            got = [lp.freq_khz for lp in cp.levels]
            if sorted(got) != levels:
                raise ValueError(
                    f"power[{i}].levels: need one entry per level of cluster {cp.cluster!r} "
                    f"{levels}, got {got}"
                )
        elif p.cluster(cp.cluster).voltages_v is None:
            raise ValueError(
                f"power[{i}].model: cluster {cp.cluster!r} has no voltages_v, "
                "which the C*V^2*f model needs"
            )
    if p.inference_cluster not in [cp.cluster for cp in p.power]:
        raise ValueError(f"power: no entry for the inference cluster {p.inference_cluster!r}")
    gov = p.governor
    if gov.cluster not in names:
        raise ValueError(f"governor.cluster: {gov.cluster!r} is not one of {names}")
    glevels = p.cluster(gov.cluster).levels_khz
    if gov.start_khz not in glevels:
        raise ValueError(
            f"governor.start_khz: {gov.start_khz} is not a level of {gov.cluster!r} {glevels}"
        )
    for j, step in enumerate(gov.steps):
        if step.cap_khz not in glevels:
            raise ValueError(
                f"governor.steps[{j}].cap_khz: {step.cap_khz} is not a level of "
                f"{gov.cluster!r} {glevels}"
            )
    levels = p.cluster(p.inference_cluster).levels_khz
    if p.workload is not None:
        for j, tc in enumerate(p.workload.timing_constraints):
            if tc.freq_khz not in levels:
                raise ValueError(
                    f"workload.timing_constraints[{j}].freq_khz: {tc.freq_khz} is not a level "
                    f"of {p.inference_cluster!r} {levels}"
                )
    vnames = [v.name for v in p.variants]
    if len(set(vnames)) != len(vnames):
        raise ValueError(f"variants: names must be unique, got {vnames}")
    for j, v in enumerate(p.variants):
        for k, row in enumerate(v.latency):
            if row.freq_khz not in levels:
                raise ValueError(
                    f"variants[{j}].latency[{k}].freq_khz: {row.freq_khz} is not a level "
                    f"of {p.inference_cluster!r} {levels}"
                )
    for path, ref in _provenance_refs(p):
        if isinstance(ref, str) and ref not in p.sources:
            raise ValueError(
                f"{path}: provenance {ref!r} is not a key of sources {sorted(p.sources)}"
            )


def _provenance_refs(p: DeviceProfile) -> list[tuple[str, ProvenanceRef]]:
    """Every provenance reference in the profile, with its field path."""
    out: list[tuple[str, ProvenanceRef]] = []

    def walk(obj: object, path: str) -> None:
        if isinstance(obj, BaseModel):
            for name in type(obj).model_fields:
                value = getattr(obj, name)
                sub = f"{path}.{name}" if path else name
                if name == "provenance" and value is not None and name != "sources":
                    out.append((sub, value))
                elif name != "sources":
                    walk(value, sub)
        elif isinstance(obj, list):
            for i, item in enumerate(obj):
                walk(item, f"{path}[{i}]")

    walk(p, "")
    return out


def unprovenanced_numbers(p: DeviceProfile) -> list[str]:
    """Field paths of numbers not covered by any provenance record (should be empty).

    A number is covered when it, or a record that contains it, carries provenance.
    Structural integers (schema version, core ids) and thresholds of the governor, which
    is covered by its own provenance, count as covered by their record.
    """
    missing: list[str] = []

    def walk(obj: object, path: str, covered: bool) -> None:
        if isinstance(obj, BaseModel):
            here = covered or getattr(obj, "provenance", None) is not None
            for name in type(obj).model_fields:
                if name in ("sources", "provenance", "schema_version", "flags"):
                    continue  # flags point at numbers (a level), they carry none
                sub = f"{path}.{name}" if path else name
                walk(getattr(obj, name), sub, here)
        elif isinstance(obj, list | tuple):
            for i, item in enumerate(obj):
                walk(item, f"{path}[{i}]", covered)
        elif isinstance(obj, bool) or obj is None:
            return
        elif isinstance(obj, int | float) and not covered:
            missing.append(path)

    walk(p, "", False)
    return missing
