"""Nordic Power Profiler Kit II: metadata and calibration, the 100 kS/s stream, the driver.

Each sample is a little-endian u32: bits 0-13 ADC value, 14-16 range, 18-23 a counter that
wraps at 64, 24-31 logic inputs. The decoder is vectorised with numpy, carries partial
samples across reads, uses the counter to count dropped samples, and resynchronises when
garbage shifts the 4-byte grid. Amperes come from a table of the calibration formula over
every (range, ADC value), one look-up per sample; a read whose words all continue the
counter takes a short path with no per-word checks left to do.

>>> cal = Calibration()
>>> words = encode_current(np.array([1e-3, 2e-3]), start_counter=5, cal=cal, vdd_mv=3300)
>>> dec = StreamDecoder(cal, vdd_mv=3300)
>>> out = dec.feed(words.astype("<u4").tobytes() + b"\\x00\\x00")
>>> len(out), dec.stats.drops    # the last sample waits for its successor to confirm it
(1, 0)
>>> round(float(out.current_a[0]) * 1e3, 3)
1.0
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from power_meter.port import SerialMeter, open_port, read_available, write
from power_meter.sample import (
    Clock,
    Flag,
    MeterError,
    MeterInfo,
    MeterStats,
    SampleBatch,
    wall_clock,
)

SAMPLE_RATE_HZ = 100_000
SAMPLE_PERIOD_S = 1.0 / SAMPLE_RATE_HZ
# How much of each sample interval a timeline ahead of the sample clock may give back: a
# late first read leaves it ahead by that latency, which this removes within 1 s per 10 ms.
CATCH_UP = 0.01
ADC_MULT = 1.8 / 163840
N_RANGES = 5
# Opcodes used here.
AVERAGE_START = b"\x06"
AVERAGE_STOP = b"\x07"
GET_METADATA = b"\x19"
AMPERE_MODE = b"\x11\x01"
SOURCE_MODE = b"\x11\x02"
DUT_ON = b"\x0c\x01"


class PPK2Error(MeterError):
    """Bad PPK2 metadata or configuration; the message names the key or value."""


def _five(x: float) -> tuple[float, ...]:
    return (x,) * N_RANGES


@dataclass(frozen=True)
class Calibration:
    """Per-range calibration constants (the PPK2's metadata), defaults when uncalibrated."""

    r: tuple[float, ...] = (1031.64, 101.65, 10.15, 0.94, 0.043)
    gs: tuple[float, ...] = _five(0.0)
    gi: tuple[float, ...] = _five(1.0)
    o: tuple[float, ...] = _five(0.0)
    s: tuple[float, ...] = _five(0.0)
    i: tuple[float, ...] = _five(0.0)
    ug: tuple[float, ...] = _five(1.0)
    calibrated: bool = False
    hw: str = ""
    ia: str = ""
    vdd_mv: int | None = None
    mode: str = ""
    extra: dict[str, str] = field(default_factory=dict, compare=False)


_KEYS = ("R", "GS", "GI", "O", "S", "I", "UG")


def parse_metadata(text: str) -> Calibration:
    """Parse the ASCII `key: value` lines the PPK2 sends for 0x19, ending with `END`.

    >>> c = parse_metadata("Calibrated: 1\\nR0: 1000.5\\nGS2: 0.01\\nVDD: 3000\\nEND\\n")
    >>> c.r[0], c.gs[2], c.vdd_mv, c.calibrated
    (1000.5, 0.01, 3000, True)
    """
    if "END" not in text:
        raise PPK2Error("metadata: expected a final 'END' line")
    base = Calibration()
    tables = {k: list(getattr(base, k.lower())) for k in _KEYS}
    kw: dict[str, object] = {}
    extra: dict[str, str] = {}
    for line in text.split("END", 1)[0].splitlines():
        if not line.strip():
            continue
        if ":" not in line:
            raise PPK2Error(f"metadata line {line!r}: expected 'key: value'")
        key, value = (p.strip() for p in line.split(":", 1))
        name, idx = key.rstrip("01234"), key[len(key.rstrip("01234")) :]
        if name in tables and len(idx) == 1:
            try:
                val = float(value)
            except ValueError:
                raise PPK2Error(f"metadata {key}: {value!r} is not a number") from None
            if not np.isfinite(val) or (name == "R" and val == 0):
                raise PPK2Error(f"metadata {key}: {value!r} is not usable")
            tables[name][int(idx)] = val
        elif key == "Calibrated":
            kw["calibrated"] = value not in ("0", "", "false")
        elif key == "VDD":
            try:
                kw["vdd_mv"] = int(float(value))
            except ValueError:
                raise PPK2Error(f"metadata VDD: {value!r} is not a number") from None
        elif key in ("HW", "IA", "mode"):
            kw[key.lower()] = value
        else:
            extra[key] = value
    return Calibration(**{k.lower(): tuple(v) for k, v in tables.items()}, extra=extra, **kw)


def format_metadata(cal: Calibration) -> str:
    """The metadata text a PPK2 with calibration `cal` sends (inverse of `parse_metadata`)."""
    lines = [f"Calibrated: {int(cal.calibrated)}"]
    for key in _KEYS:
        lines += [f"{key}{r}: {v!r}" for r, v in enumerate(getattr(cal, key.lower()))]
    lines += [f"HW: {cal.hw}", f"IA: {cal.ia}", f"mode: {cal.mode}"]
    if cal.vdd_mv is not None:
        lines.append(f"VDD: {cal.vdd_mv}")
    return "\n".join(lines) + "\nEND\n"


def _arrays(cal: Calibration) -> dict[str, np.ndarray]:
    return {k: np.asarray(getattr(cal, k.lower()), dtype=float) for k in _KEYS}


def adc_to_current(adc: np.ndarray, rng: np.ndarray, cal: Calibration, vdd_mv: float) -> np.ndarray:
    """Amperes from 14-bit ADC values and ranges (the PPK2 formula; the ADC value is x4)."""
    c = {k: v.take(rng) for k, v in _arrays(cal).items()}  # take: faster than v[rng]
    x = (adc.astype(float) * 4 - c["O"]) * ADC_MULT / c["R"]
    return c["UG"] * (x * (c["GS"] * x + c["GI"]) + c["S"] * vdd_mv / 1000 + c["I"])


def range_max_a(cal: Calibration) -> np.ndarray:
    """Approximate full-scale current of each range (amperes)."""
    return (0x3FFF * 4 - np.asarray(cal.o)) * ADC_MULT / np.asarray(cal.r)


def encode_current(
    current_a: np.ndarray,
    start_counter: int,
    cal: Calibration,
    vdd_mv: float,
    logic: int = 0,
) -> np.ndarray:
    """Stream words (uint32) a PPK2 would send for these currents: auto-ranged and quantised."""
    current_a = np.asarray(current_a, dtype=float)
    c = _arrays(cal)
    full = range_max_a(cal) * 0.9
    rng = np.searchsorted(full, np.abs(current_a)).clip(0, N_RANGES - 1)
    target = current_a / c["UG"][rng] - c["S"][rng] * vdd_mv / 1000 - c["I"][rng]
    gs, gi = c["GS"][rng], c["GI"][rng]
    with np.errstate(invalid="ignore", divide="ignore"):
        quad = (-gi + np.sqrt(np.maximum(gi * gi + 4 * gs * target, 0))) / (2 * gs)
    x = np.where(gs == 0, target / gi, quad)
    adc = np.rint((x * c["R"][rng] / ADC_MULT + c["O"][rng]) / 4).clip(0, 0x3FFF).astype(np.uint32)
    counter = (np.arange(current_a.size, dtype=np.uint32) + start_counter) % 64
    return adc | (rng.astype(np.uint32) << 14) | (counter << 18) | (np.uint32(logic & 0xFF) << 24)


@dataclass
class Decoded:
    """Samples decoded from the stream: current, range, logic, absolute index, drop flags."""

    current_a: np.ndarray
    rng: np.ndarray
    logic: np.ndarray
    index: np.ndarray  # sample number since the decoder started, counting dropped samples
    dropped_before: np.ndarray  # samples lost just before each one

    def __len__(self) -> int:
        return int(self.current_a.shape[0])


_MIN_RUN = 8  # consecutive rejected words that mean the 4-byte grid has slipped


class StreamDecoder:
    """Turns stream bytes into samples; keeps partial words and the counter across reads.

    A word is accepted when its range is valid (0-4) and its counter continues from the
    word before it or into the word after it, so a lone garbage word is rejected. The last
    word of each read waits for its successor. Drops are counted modulo 64 from the counter.
    """

    def __init__(self, cal: Calibration | None = None, vdd_mv: float = 3300) -> None:
        """A decoder with calibration `cal` and supply voltage `vdd_mv` (used by the formula)."""
        self.cal = cal or Calibration()
        self.vdd_mv = vdd_mv
        self.stats = MeterStats()
        self._carry = b""
        self._prev_raw: int | None = None  # counter of the last word examined
        self._last_acc: int | None = None  # counter of the last accepted word
        self._index = -1  # absolute index of the last accepted sample
        self._table = np.zeros(0)  # amperes by the low 17 bits of a word (range, ADC value)
        self._table_key: tuple[Calibration, float] | None = None

    def restart(self) -> Decoded:
        """The stream stopped (a stall): the whole words held back for a successor that will
        not come are decoded if they continue the counter (they arrived: they are samples),
        others are garbage; then the counter is forgotten, so the next jump is not a drop.
        A partial word is kept when every whole word was good: its other bytes may follow."""
        n = len(self._carry) // 4
        words = np.frombuffer(self._carry, dtype="<u4", count=n)
        cnt = ((words >> 18) & 63).astype(np.int64)
        good = 0
        prev = self._last_acc
        while good < n and prev is not None and (words[good] >> 14) & 7 < N_RANGES:
            if int(cnt[good]) != (prev + 1) % 64:
                break
            prev, good = int(cnt[good]), good + 1
        parts: list[Decoded] = []
        if good:
            self._accept_run(words[:good], cnt[:good].astype(np.uint8),
                             ((words[:good] >> 14) & 7).astype(np.uint8), parts)  # fmt: skip
        self.stats.bad_frames += n - good
        self.stats.garbage_bytes += 4 * (n - good)
        self._carry = self._carry[4 * n :] if good == n else b""
        self._prev_raw = None
        self._last_acc = None
        return parts[0] if parts else _no_samples()

    @property
    def pending_bytes(self) -> int:
        """Bytes received but not yet decoded (a held-back word and a partial one)."""
        return len(self._carry)

    def feed(self, data: bytes) -> Decoded:
        """Decode `data` appended to what was carried over."""
        buf = self._carry + bytes(data)
        parts: list[Decoded] = []
        start = 0
        while True:
            n_words = (len(buf) - start) // 4
            if n_words < 2:
                break
            words = np.frombuffer(buf, dtype="<u4", count=n_words, offset=start)
            done, slipped = self._decode(words, parts)
            start += 4 * done
            if not slipped:
                break
            shift = self._find_alignment(buf, start)
            if shift is None:
                # Not enough data to see the grid again: drop what cannot be decoded yet
                # beyond a short tail that might hold the start of a good run.
                keep = max(len(buf) - start - 4 * (_MIN_RUN + 2), 0)
                self.stats.garbage_bytes += keep
                start += keep
                break
            rescued = self._rescue(buf, start, shift, parts)
            self.stats.garbage_bytes += shift - 4 * rescued
            start += shift
            self._prev_raw = None
        self._carry = buf[start:]
        if not parts:
            return _no_samples()
        if len(parts) == 1:
            return parts[0]
        return Decoded(*(np.concatenate([getattr(p, f) for p in parts]) for f in _DEC_FIELDS))

    def _current(self, words: np.ndarray) -> np.ndarray:
        """Amperes of (valid) words: one look-up in a table of `adc_to_current` over every
        (range, ADC value), built once per calibration and supply, so each value is exactly
        the formula's."""
        key = (self.cal, self.vdd_mv)
        if self._table_key != key:
            adc = np.tile(np.arange(1 << 14, dtype=np.int64), N_RANGES)
            rng = np.repeat(np.arange(N_RANGES, dtype=np.int64), 1 << 14)
            table = np.full(8 << 14, np.nan)  # ranges 5-7 are never looked up
            table[: N_RANGES << 14] = adc_to_current(adc, rng, self.cal, self.vdd_mv)
            self._table, self._table_key = table, key
        return self._table.take(words & 0x1FFFF)  # take: several times faster than []

    def _decode(self, words: np.ndarray, parts: list[Decoded]) -> tuple[int, bool]:
        """Decode all but the last word; return words consumed and whether the grid slipped."""
        cnt = ((words >> 18) & 63).astype(np.uint8)
        rng = ((words >> 14) & 7).astype(np.uint8)
        ok = rng < N_RANGES
        steps = ((cnt[1:] - cnt[:-1]) & 63) == 1  # counter continues (uint8 wraps at 256)
        if ok.all() and steps.all():
            # Every word valid: each has a successor that continues it.
            self._accept_run(words[:-1], cnt[:-1], rng[:-1], parts)
            return len(words) - 1, False
        return self._decode_checked(words, cnt, rng, ok, steps, parts)

    def _accept_run(
        self, words: np.ndarray, cnt: np.ndarray, rng: np.ndarray, parts: list[Decoded]
    ) -> None:
        """Accept `words`, whose counters run on without a gap."""
        m = len(words)
        lost = 0 if self._last_acc is None else (int(cnt[0]) - self._last_acc - 1) % 64
        dropped = np.zeros(m, dtype=np.int64)
        dropped[0] = lost
        first = self._index + 1 + lost
        index = np.arange(first, first + m)
        self._index = first + m - 1
        self._prev_raw = self._last_acc = int(cnt[-1])
        self.stats.drops += lost
        self.stats.frames += m
        logic = (words >> 24).astype(np.int64)
        parts.append(Decoded(self._current(words), rng.astype(np.int64), logic, index, dropped))

    def _decode_checked(
        self,
        words: np.ndarray,
        cnt8: np.ndarray,
        rng8: np.ndarray,
        ok: np.ndarray,
        steps: np.ndarray,
        parts: list[Decoded],
    ) -> tuple[int, bool]:
        """`_decode` word by word: some word has a bad range or breaks the counter."""
        valid, undecided = _valid_words(ok, cnt8, steps, self._prev_raw)
        m = len(words) - 1
        bad = ~valid
        slipped = False
        # A long run of rejected words means misalignment: stop at its start and resync.
        if bad.sum() >= _MIN_RUN:
            run = np.convolve(bad.astype(np.int64), np.ones(_MIN_RUN, dtype=np.int64), "valid")
            hits = np.flatnonzero(run == _MIN_RUN)
            if hits.size:
                m = int(hits[0])
                valid = valid[:m]
                slipped = True
        if undecided and not slipped:
            m -= 1  # the last body word waits for two successors: examined again next read
            valid = valid[:m]
        idx = np.flatnonzero(valid)
        self.stats.bad_frames += int(m - idx.size)
        self.stats.garbage_bytes += 4 * int(m - idx.size)
        if m > 0:
            self._prev_raw = int(cnt8[m - 1])
        if idx.size:
            acc = cnt8[idx].astype(np.int64)
            prev_acc = np.empty_like(acc)
            prev_acc[0] = acc[0] - 1 if self._last_acc is None else self._last_acc
            prev_acc[1:] = acc[:-1]
            dropped = (acc - prev_acc - 1) % 64
            index = self._index + np.cumsum(dropped + 1)
            self._index = int(index[-1])
            self._last_acc = int(acc[-1])
            self.stats.drops += int(dropped.sum())
            self.stats.frames += int(idx.size)
            w = words[idx]
            logic = (w >> 24).astype(np.int64)
            r = rng8[idx].astype(np.int64)
            parts.append(Decoded(self._current(w), r, logic, index, dropped))
        return m, slipped

    def _rescue(self, buf: bytes, start: int, shift: int, parts: list[Decoded]) -> bool:
        """Accept the first word of a slipped stretch when it is a sample after all.

        The word before a slip continues the counter but nothing after it does, like a
        garbage word that matched the counter by chance. It is a sample when the grid found
        again lies wholly after it, it continues the last sample, and the first word found
        again does not repeat its counter (garbage in front of an unbroken stream would).
        """
        if shift < 4 or self._last_acc is None:
            return False
        w = np.frombuffer(buf, dtype="<u4", count=1, offset=start)[0]
        nxt = int(np.frombuffer(buf, dtype="<u4", count=1, offset=start + shift)[0])
        c, r = (int(w) >> 18) & 63, (int(w) >> 14) & 7
        if r >= N_RANGES or c != (self._last_acc + 1) % 64 or c == (nxt >> 18) & 63:
            return False
        one = np.array([w], dtype=np.uint32)
        self._accept_run(one, np.array([c], dtype=np.uint8), np.array([r], dtype=np.uint8), parts)
        return True

    def _find_alignment(self, buf: bytes, start: int) -> int | None:
        """Smallest byte shift after which `_MIN_RUN` words continue the counter."""
        need = 4 * (_MIN_RUN + 1)
        for shift in range(1, min(len(buf) - start - need, 4 * 64) + 1):
            w = np.frombuffer(buf, dtype="<u4", count=_MIN_RUN + 1, offset=start + shift)
            c = (w >> 18) & 63
            if np.all(((w >> 14) & 7) < N_RANGES) and np.all(np.diff(c.astype(np.int64)) % 64 == 1):
                return shift
        return None


_DEC_FIELDS = ("current_a", "rng", "logic", "index", "dropped_before")


def _steady_loss(lags: list[tuple[float, float]], since: float, now: float) -> int:
    """Samples (a multiple of 64) that a lag steady over ``since..now`` says were lost, or 0.

    >>> _steady_loss([(0.01 * k, 0.0641 + 0.001 * (k % 3)) for k in range(26)], 0.0, 0.25)
    6400
    >>> _steady_loss([(0.01 * k, 0.06 + 0.004 * k) for k in range(26)], 0.0, 0.25)  # growing
    0
    """
    edges = np.linspace(since, now, 6)
    minima = []
    for a, b in itertools.pairwise(edges):
        part = [lag for t, lag in lags if a <= t <= b]
        if not part:
            return 0  # no read found the host caught up: nothing to tell loss from latency
        minima.append(min(part))
    low = min(minima)
    if max(minima) - low > max(0.1 * low, 0.002):
        return 0
    return 64 * round(low / (64 * SAMPLE_PERIOD_S))


def _no_samples() -> Decoded:
    z = np.zeros(0)
    zi = np.zeros(0, dtype=np.int64)
    return Decoded(z, zi, zi, zi, zi)


def _valid_words(
    ok: np.ndarray, cnt8: np.ndarray, steps: np.ndarray, prev_raw: int | None
) -> tuple[np.ndarray, bool]:
    """Which words but the last are samples, and whether the last of those is undecided.

    A word is a sample when its range is valid and the next word continues its counter;
    or when it continues the word before it and the stream resumes right after it (the
    next word is continued in turn, after a drop; or the word after next is two counts on,
    one corrupted word between). A word that only continues the one before it and is
    followed by more rejected words is garbage that matched the counter by chance (1 in 64),
    as the first word after a slip of the 4-byte grid is. Deciding that needs the two words
    after it: for the last word but one, ``undecided`` says it must wait for the next read.
    """
    n = len(ok)
    cont = np.empty_like(ok)  # cont[k]: word k continues word k - 1
    cont[0] = bool(ok[0]) and prev_raw is not None and int(cnt8[0]) == (prev_raw + 1) % 64
    cont[1:] = ok[1:] & ok[:-1] & steps
    resumes = np.zeros(n - 1, dtype=bool)
    if n >= 3:
        two_on = ((cnt8[2:] - cnt8[:-2]) & 63) == 2  # uint8 wraps at 256
        resumes[: n - 2] = cont[2:] | (ok[2:] & ok[:-2] & two_on)
    valid = ok[:-1] & (cont[1:] | (cont[:-1] & resumes))
    undecided = bool(ok[n - 2] and cont[n - 2] and not cont[n - 1])
    valid[n - 2] |= undecided
    return valid, undecided


class TimeDropCounter:
    """Samples missing against the clock: the kit makes exactly 100,000 samples a second.

    Within a stretch of stream (between stalls and reconnects), the `k`-th sample received
    at host time `t` was made no later than `t`, so `t - (k - 1) x 10 us` estimates when the
    stretch began, delayed by latency and by every sample lost so far. The least value seen
    is the start; the least value of the last `window_s` of reads, less the start, is the
    time the lost samples would have taken. Unlike the 6-bit counter this sees losses of any
    length, 64 or 1000 samples alike; its error is the least latency reached within the
    window (about a USB frame) plus the kit's clock error against the host's (crystals
    agree to about 50 ppm: 5 samples per second of stretch).

    >>> c = TimeDropCounter(window_s=0.01)  # 1000 samples a read, the third read 10 ms late
    >>> c.update(0.010, 1000), c.update(0.020, 1000), c.update(0.040, 1000)
    (0, 0, 1000)
    """

    def __init__(self, window_s: float = 0.25) -> None:
        """Count from zero; `window_s` of reads are searched for the least latency."""
        self.window_s = window_s
        self.closed = 0  # drops of stretches that ended
        self._reset()

    def _reset(self) -> None:
        self._received = 0
        self._start: float | None = None
        self._recent: deque[tuple[float, float]] = deque()
        self._current = 0

    def restart(self) -> None:
        """The stream stopped (stall, reconnect): keep what this stretch lost, start anew."""
        self.closed += self._current
        self._reset()

    def update(self, t_read: float, decoded: int, held: int = 0) -> int:
        """`decoded` more samples, and `held` ones not yet decoded, have arrived by `t_read`
        (host clock); returns the samples missing so far."""
        self._received += decoded
        est = t_read - (self._received + held - 1) * SAMPLE_PERIOD_S
        self._start = est if self._start is None else min(self._start, est)
        self._recent.append((t_read, est))
        while self._recent[0][0] < t_read - self.window_s:
            self._recent.popleft()
        lag = min(e for _, e in self._recent) - self._start
        self._current = round(lag / SAMPLE_PERIOD_S)
        return self.closed + self._current


class PPK2Meter(SerialMeter):
    """Driver for the PPK2 in ampere mode (or source mode) streaming at 100 kS/s.

    Timestamps: sample n is stamped t0 + n x 10 us, where t0 comes from the read that
    brought it in, corrected by the bytes still waiting, and kept at its least-delayed
    observation (latency only ever makes a sample look later). A sample is never stamped
    before the one before it: when a prompter read lowers t0, the timeline (ahead by the
    earlier reads' latency) catches up by at most `CATCH_UP` of each interval. Voltage is
    the configured supply, flagged `Flag.NOMINAL_VOLTAGE`: the PPK2 measures current only.
    """

    baudrate = 115200  # CDC ACM ignores it
    update_period_s = SAMPLE_PERIOD_S

    def __init__(
        self,
        port: str,
        vdd_mv: int | None = None,
        mode: str = "ampere",
        clock: Clock = wall_clock,
        stall_after_s: float = 0.1,
        metadata_timeout_s: float = 2.0,
        hidden_loss_after_s: float = 0.05,
    ) -> None:
        """Configure (does not open the port). `vdd_mv` None takes the metadata's VDD."""
        if mode not in ("ampere", "source"):
            raise PPK2Error(f"mode {mode!r}: expected 'ampere' or 'source'")
        if vdd_mv is not None and not 800 <= vdd_mv <= 5000:
            raise PPK2Error(f"vdd_mv {vdd_mv}: expected 800-5000 mV")
        self.url = port
        self.mode = mode
        self.vdd_mv_requested = vdd_mv
        self.clock = clock
        self.stall_after_s = stall_after_s
        self.metadata_timeout_s = metadata_timeout_s
        self.hidden_loss_after_s = hidden_loss_after_s
        self._lag_since: float | None = None
        self._lags: list[tuple[float, float]] = []  # (read time, lag) while the lag is high
        self.stats = MeterStats()
        self.decoder = StreamDecoder()
        self.cal = Calibration()
        self._port = None
        self._t0: float | None = None
        self._last_obs = 0.0
        self._last_data = 0.0
        self._after_gap = False
        self._last_t = -float("inf")
        self._last_idx: int | None = None  # the decoder's index of the sample stamped last
        self.by_time = TimeDropCounter()

    @property
    def vdd_mv(self) -> float:
        """The supply voltage used for the formula and for power (mV)."""
        return self.decoder.vdd_mv

    def open(self) -> None:
        """Open, read metadata, select the mode and start the stream."""
        self._port = open_port(self.url, self.baudrate, timeout=0.02)
        write(self._port, AVERAGE_STOP)
        time.sleep(0.02)
        self._port.reset_input_buffer()
        write(self._port, GET_METADATA)
        text = self._read_metadata()
        self.cal = parse_metadata(text)
        vdd = self.vdd_mv_requested or self.cal.vdd_mv or 3300
        if self.mode == "ampere":
            write(self._port, AMPERE_MODE)
        else:
            write(self._port, SOURCE_MODE + bytes([0x0D, vdd >> 8, vdd & 0xFF]) + DUT_ON)
        old = self.decoder.stats
        self.decoder = StreamDecoder(self.cal, vdd)
        self._last_idx = None  # a new decoder counts from 0
        self.decoder.stats = old
        self.stats = old
        self._t0 = None
        self._lag_since = None
        self._after_gap = self._last_t > -float("inf")
        self.by_time.restart()
        write(self._port, AVERAGE_START)
        self._last_data = time.monotonic()

    def _read_metadata(self) -> str:
        buf = bytearray()
        deadline = time.monotonic() + self.metadata_timeout_s
        while time.monotonic() < deadline:
            buf += read_available(self._port, 4096)
            if b"END" in buf:
                return buf.decode("ascii", "replace")
        raise PPK2Error(f"{self.url}: no metadata ('... END') within {self.metadata_timeout_s} s")

    def _hidden_loss(self, lag: float, t_read: float, caught_up: bool) -> int:
        """Samples lost in whole multiples of 64, which the counter cannot see.

        Such a loss makes every later sample arrive `lost x 10 us` later than the sample
        clock says, by the same amount for good. A lag above `hidden_loss_after_s` kept for
        0.25 s is taken as a loss of the nearest multiple of 64 samples (counted as drops,
        the sample clock moves on by that much, the drop is flagged where it was detected)
        only when it holds steady: the least lag of the reads that found nothing more
        waiting (the host had caught up) is the same, within a tenth of it or 2 ms, in each
        fifth of those 0.25 s. A host that falls behind (a loaded machine) makes a lag that
        grows and shrinks as it catches up: not a loss; the next 0.25 s are watched again.
        """
        if lag <= self.hidden_loss_after_s:
            self._lag_since = None
            return 0
        if self._lag_since is None:
            self._lag_since, self._lags = t_read, []
        if caught_up:
            self._lags.append((t_read, lag))
        if t_read - self._lag_since < 0.25:
            return 0
        lost = _steady_loss(self._lags, self._lag_since, t_read)
        self._lag_since = None
        if lost <= 0:
            return 0
        self.stats.drops += lost
        self._t0 += lost * SAMPLE_PERIOD_S
        return lost

    def identify(self) -> MeterInfo:
        """Hardware id and calibration state from the metadata."""
        details = {"hw": self.cal.hw, "ia": self.cal.ia, "calibrated": str(self.cal.calibrated)}
        details["vdd_mv"] = str(self.vdd_mv)
        return MeterInfo("ppk2", "PPK2", self.url, self.update_period_s, details)

    def close(self) -> None:
        """Stop the stream and close the port."""
        if self._port is not None:
            with contextlib.suppress(OSError):
                write(self._port, AVERAGE_STOP)
        super().close()

    def read_batch(self) -> SampleBatch:
        """Everything that arrived since the last call, decoded and stamped."""
        if self._port is None:
            raise MeterError(f"{self.url}: port is not open")
        data = read_available(self._port)
        waiting = self._port.in_waiting
        # After `in_waiting`: every sample counted (read or waiting) had arrived by t_read,
        # so latency only ever makes a sample look later, never earlier.
        t_read = self.clock()
        now = time.monotonic()
        if not data:
            if now - self._last_data > self.stall_after_s and not self._after_gap:
                return self._stalled()
            return SampleBatch.empty()
        self._last_data = now
        dec = self.decoder.feed(data)
        if not len(dec):
            return SampleBatch.empty()
        held = self.decoder.pending_bytes // 4 + waiting // 4  # arrived, not yet decoded
        self.stats.drops_by_time = self.by_time.update(t_read, len(dec), held)
        # The newest received sample is the last decoded one plus the words held back.
        newest = dec.index[-1] + held
        obs = t_read - newest * SAMPLE_PERIOD_S
        if self._t0 is None:
            self._t0 = obs
        else:
            # Latency only delays; allow the two clocks to drift apart by 200 ppm.
            self._t0 = min(self._t0 + 2e-4 * max(t_read - self._last_obs, 0.0), obs)
        self._last_obs = t_read
        hidden = self._hidden_loss(obs - self._t0, t_read, caught_up=waiting == 0)
        return self._stamp(dec, hidden)

    def _stalled(self) -> SampleBatch:
        """The stream went silent: the samples held back end this stretch; the next one
        starts anew (counter, sample clock and time-based drop count)."""
        self._after_gap = True
        held = self.decoder.restart()
        batch = self._stamp(held, 0, first_after_gap=False) if self._t0 is not None else None
        self.by_time.restart()
        self._t0 = None
        self._lag_since = None
        return batch if batch is not None else SampleBatch.empty()

    def _stamp(self, dec: Decoded, hidden: int, first_after_gap: bool = True) -> SampleBatch:
        """Samples at t0 + n x 10 us, never before the last one stamped."""
        if not len(dec):
            return SampleBatch.empty()
        assert self._t0 is not None
        t = self._t0 + dec.index * SAMPLE_PERIOD_S
        if self._last_idx is not None and dec.index[0] > self._last_idx:
            steps = (dec.index - self._last_idx) * SAMPLE_PERIOD_S * (1 - CATCH_UP)
            t = np.maximum(t, self._last_t + steps)
        elif t[0] <= self._last_t:  # a new decoder (reconnect): carry on after the last
            t += self._last_t + SAMPLE_PERIOD_S - t[0]
        self._last_t, self._last_idx = float(t[-1]), int(dec.index[-1])
        flags = np.where(dec.dropped_before > 0, int(Flag.DROP), 0) | int(Flag.NOMINAL_VOLTAGE)
        if hidden:
            flags[0] |= int(Flag.DROP)
        if self._after_gap and first_after_gap:
            flags[0] |= int(Flag.AFTER_GAP)
            self._after_gap = False
        v = np.full(len(dec), self.vdd_mv / 1000)
        return SampleBatch(t, v, dec.current_a, dec.current_a * v, flags.astype(np.int64))
