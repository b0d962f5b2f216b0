"""PPK2 emulator: metadata on 0x19, the 100 kS/s stream between 0x06 and 0x07."""

from __future__ import annotations

from typing import Any

import numpy as np

from power_meter.emulators.base import PtyEmulator
from power_meter.ppk2 import SAMPLE_PERIOD_S, Calibration, encode_current, format_metadata
from power_meter.waveform import Waveform

# Argument bytes that follow each opcode, so arguments are never read as opcodes.
_ARGS = {0x01: 2, 0x02: 1, 0x03: 2, 0x04: 2, 0x05: 0, 0x08: 1, 0x09: 1, 0x0C: 1, 0x0D: 2}
_ARGS |= {0x0E: 1, 0x0F: 1, 0x11: 1, 0x12: 4, 0x25: 20}

# A calibration that is not the default, so tests prove the driver uses the metadata.
EMULATED_CALIBRATION = Calibration(
    r=(1028.1, 101.9, 10.08, 0.951, 0.0442),
    gs=(0.0, 0.0012, 0.0, 0.0031, 0.0),
    gi=(1.0021, 0.9987, 1.0005, 0.9992, 1.0013),
    o=(61.0, 44.5, 52.0, 47.0, 38.5),
    s=(1.2e-7, 0.0, 2.1e-6, 0.0, 1.1e-4),
    i=(-2.0e-8, 1.1e-7, 0.0, -3.0e-6, 2.0e-4),
    ug=(1.0, 1.0, 1.0, 1.0, 1.0),
    calibrated=True,
    hw="8420",
    ia="56",
    mode="2",
)


class PPK2Emulator(PtyEmulator):
    """A PPK2 in ampere mode with a DUT drawing the waveform's power at `vdd_mv`.

    Sample n covers emulated time [n, n+1) x 10 us and reports its mean current. If the
    host does not read fast enough the queue overflows and whole samples are lost, as on
    the real kit; counters: `produced`, `sent`, `dropped_injected`, `dropped_overflow`,
    `dropped_stall`, `lost_before_last_sent` (losses followed by a sample that was sent:
    those a host can notice), and `sent_energy_j` (energy of the samples actually sent).
    `sent_numbers(k)` gives the sample numbers of the first `k` samples sent, in order: the
    stream's own sample clock, which a test compares with what the host recorded.
    """

    out_cap = 64 * 1024  # about 0.16 s of stream: the kit's own buffering is small

    def __init__(
        self,
        waveform: Waveform,
        vdd_mv: int = 3300,
        cal: Calibration = EMULATED_CALIBRATION,
        **kw: Any,
    ) -> None:
        """See `PtyEmulator` for `accel`, `link`, `faults`, `seed`."""
        super().__init__(waveform, **kw)
        self.vdd_mv = vdd_mv
        self.cal = Calibration(**{**cal.__dict__, "vdd_mv": vdd_mv})
        self.streaming = False
        self.produced = self.sent = 0
        self.dropped_injected = self.dropped_overflow = self.dropped_stall = 0
        self.sent_energy_j = 0.0
        self.lost_before_last_sent = 0
        self._n = 0  # next sample number (the counter is n mod 64)
        self._t_start = 0.0
        self._cmd = b""
        self._drop_left = 0
        self._runs: list[list[int]] = []  # [first, stop) runs of the sample numbers sent

    def on_command(self, data: bytes, now: float) -> None:
        """Parse opcodes with their argument bytes."""
        buf = self._cmd + data
        i = 0
        while i < len(buf):
            op = buf[i]
            need = _ARGS.get(op, 0)
            if i + 1 + need > len(buf):
                break
            if op == 0x19:
                self.send(format_metadata(self.cal).encode("ascii"))
            elif op == 0x06 and not self.streaming:
                self.streaming = True
                self._t_start = now - self._n * SAMPLE_PERIOD_S
            elif op == 0x07:
                self.streaming = False
            i += 1 + need
        self._cmd = buf[i:]

    def on_reconnect(self) -> None:
        """A re-plugged kit is idle until started again."""
        self.streaming = False
        self._cmd = b""

    def on_tick(self, now: float) -> None:
        """Produce the samples due by `now`."""
        if not self.streaming:
            return
        due = int((now - self._t_start) / SAMPLE_PERIOD_S)
        if due <= self._n:
            return
        n = np.arange(self._n, due)
        self._n = due
        self.produced += n.size
        t0 = self._t_start + n * SAMPLE_PERIOD_S
        p = self.waveform.mean_power(t0, t0 + SAMPLE_PERIOD_S)
        words = encode_current(p / (self.vdd_mv / 1000), int(n[0] % 64), self.cal, self.vdd_mv)
        keep = np.ones(n.size, dtype=bool)
        if self.stalled(now):
            self.dropped_stall += n.size
            return
        f = self.take("drop")
        first = 0  # a burst that began in an earlier tick goes on from this tick's first sample
        if f is not None:
            first = 0 if self._drop_left else 1
            self._drop_left += f.n
        if self._drop_left:
            k = min(self._drop_left, n.size - first)
            keep[first : first + k] = False
            self._drop_left -= k
            self.dropped_injected += k
        if self.queued + 4 * int(keep.sum()) > self.out_cap:
            self.dropped_overflow += int(keep.sum())
            return
        self.sent += int(keep.sum())
        if keep[-1]:  # every loss so far came before a sample the host can still receive
            self.lost_before_last_sent = (
                self.dropped_injected + self.dropped_overflow + self.dropped_stall
            )
        self.sent_energy_j += float(p[keep].sum()) * SAMPLE_PERIOD_S
        self._log_sent(n[keep])
        words = words[keep]
        if self.take("bad_checksum") is not None:
            words[0] |= np.uint32(7 << 14)  # range 7 does not exist
        data = words.astype("<u4").tobytes()
        if self.take("truncate") is not None:
            data = data[:-2]  # half a word: the grid slips until the decoder resyncs
        self.send(data)

    def _log_sent(self, numbers: np.ndarray) -> None:
        """Append the sample numbers sent (ascending) to the run-length log."""
        if not numbers.size:
            return
        breaks = np.flatnonzero(np.diff(numbers) != 1) + 1
        for part in np.split(numbers, breaks):
            first, stop = int(part[0]), int(part[-1]) + 1
            if self._runs and self._runs[-1][1] == first:
                self._runs[-1][1] = stop
            else:
                self._runs.append([first, stop])

    def backlog_samples(self) -> int:
        """Samples due by now that the host cannot have read yet: not yet made (the
        emulator's thread is late) or queued behind the pty, which holds a few more."""
        if not self.streaming:
            return 0
        due = int((self.clock() - self._t_start) / SAMPLE_PERIOD_S)
        return max(due - self._n, 0) + self.queued // 4

    def sample_start_s(self, n: np.ndarray) -> np.ndarray:
        """Emulated time at which sample `n` began (of the stream as last started)."""
        return self._t_start + np.asarray(n) * SAMPLE_PERIOD_S

    def sent_numbers(self, count: int | None = None) -> np.ndarray:
        """Sample numbers of the first `count` samples sent (all if None), in order."""
        parts, left = [], self.sent if count is None else count
        for first, stop in self._runs:
            if left <= 0:
                break
            parts.append(np.arange(first, min(stop, first + left), dtype=np.int64))
            left -= parts[-1].size
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
