"""PPK2: metadata, the calibration formula, the stream's bit fields, drops, carries, resync."""

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_meter.emulators.ppk2 import EMULATED_CALIBRATION
from power_meter.ppk2 import (
    Calibration,
    PPK2Error,
    StreamDecoder,
    adc_to_current,
    encode_current,
    format_metadata,
    parse_metadata,
)

META = """Calibrated: 1
R0: 1031.64
R1: 101.65
R2: 10.15
R3: 0.94
R4: 0.043
GS0: 0.0
GS1: 0.002
GS2: 0
GS3: 0
GS4: 0
GI0: 1.01
GI1: 1
GI2: 1
GI3: 1
GI4: 1
O0: 55
O1: 0
O2: 0
O3: 0
O4: 0
S0: 0.0001
S1: 0
S2: 0
S3: 0
S4: 0
I0: 0.00002
I1: 0
I2: 0
I3: 0
I4: 0
UG0: 0.98
UG1: 1
UG2: 1
UG3: 1
UG4: 1
HW: 9173
IA: 56
mode: 2
VDD: 3000
END
"""


def word(adc, rng, counter, logic=0):
    return adc | (rng << 14) | ((counter % 64) << 18) | (logic << 24)


def test_metadata_parses_and_round_trips():
    c = parse_metadata(META)
    assert c.calibrated and c.hw == "9173" and c.vdd_mv == 3000
    assert c.gi[0] == 1.01 and c.gs[1] == 0.002 and c.o[0] == 55 and c.ug[0] == 0.98
    assert parse_metadata(format_metadata(c)) == c


@pytest.mark.parametrize(
    ("text", "match"),
    [("R0: 1\n", "END"), ("R0: x\nEND", "R0"), ("R2: 0\nEND", "R2"), ("garbage\nEND", "key")],
)
def test_bad_metadata_is_named(text, match):
    with pytest.raises(PPK2Error, match=match):
        parse_metadata(text)


def test_formula_by_hand():
    c = parse_metadata(META)
    adc, r, vdd = 1000, 0, 3000
    x = (adc * 4 - 55) * (1.8 / 163840) / 1031.64
    want = 0.98 * (x * (0.0 * x + 1.01) + 0.0001 * vdd / 1000 + 0.00002)
    got = adc_to_current(np.array([adc]), np.array([r]), c, vdd)[0]
    assert got == pytest.approx(want, rel=1e-12)


def test_stream_bit_fields_by_hand():
    words = [word(1000, 3, k, logic=0xA5) for k in range(10)]
    data = np.array(words, dtype="<u4").tobytes()
    dec = StreamDecoder(Calibration(), 3300)
    out = dec.feed(data)
    assert len(out) == 9  # the last waits for a successor
    assert out.rng.tolist() == [3] * 9 and out.logic.tolist() == [0xA5] * 9
    want = 1000 * 4 * (1.8 / 163840) / 0.94
    assert out.current_a[0] == pytest.approx(want)
    assert out.index.tolist() == list(range(9))


def test_counter_wrap_is_not_a_drop():
    data = np.array([word(5, 1, k) for k in range(60, 200)], dtype="<u4").tobytes()
    dec = StreamDecoder()
    dec.feed(data)
    assert dec.stats.drops == 0 and dec.stats.frames == 139


@settings(max_examples=200, deadline=None)
@given(st.lists(st.integers(1, 63), max_size=6), st.data())
def test_injected_drops_are_counted_exactly(gaps, data):
    n = 2000
    keep = np.ones(n, dtype=bool)
    lost = 0
    for g in gaps:
        start = data.draw(st.integers(2, n - 200))
        if keep[start - 2 : start + g + 2].all():  # runs under 64, two samples apart
            keep[start : start + g] = False
            lost += g
    words = encode_current(np.full(n, 2e-3), 0, EMULATED_CALIBRATION, 3300)[keep]
    dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
    # One more word that continues the last: it confirms it (and waits for its own).
    nxt = encode_current(np.full(1, 2e-3), n % 64, EMULATED_CALIBRATION, 3300)
    out = dec.feed(words.astype("<u4").tobytes() + nxt.astype("<u4").tobytes())
    assert dec.stats.drops == lost
    assert out.index.tolist() == np.flatnonzero(keep).tolist()


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(0, 4000), max_size=12))
def test_carry_across_any_split(cuts):
    words = encode_current(np.linspace(1e-6, 0.5, 1000), 7, EMULATED_CALIBRATION, 3300)
    data = words.astype("<u4").tobytes()
    whole = StreamDecoder(EMULATED_CALIBRATION, 3300).feed(data)
    dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
    edges = [0, *sorted(cuts), len(data)]
    parts = [dec.feed(data[a:b]) for a, b in itertools.pairwise(edges) if b >= a]
    got = np.concatenate([p.current_a for p in parts])
    np.testing.assert_array_equal(got, whole.current_a)
    assert dec.stats.drops == 0


def test_encode_decode_round_trip_across_ranges():
    cur = np.geomspace(1e-6, 0.9, 500)
    words = encode_current(cur, 0, EMULATED_CALIBRATION, 3300)
    assert set(((words >> 14) & 7).tolist()) == {0, 1, 2, 3, 4}
    out = StreamDecoder(EMULATED_CALIBRATION, 3300).feed(words.astype("<u4").tobytes())
    np.testing.assert_allclose(out.current_a, cur[:-1], rtol=2e-3, atol=1e-7)


def test_misaligned_garbage_resyncs():
    words = encode_current(np.full(400, 1e-3), 0, EMULATED_CALIBRATION, 3300)
    data = words.astype("<u4").tobytes()
    dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
    out = dec.feed(data[:800] + b"\x01\x02\x03" + data[800:])
    assert dec.stats.drops == 0
    assert len(out) == 399
    assert dec.stats.garbage_bytes == 3


def lucky_garbage(counter):
    """Three bytes that, with the next word's first byte, make a word of range 0 whose counter
    continues ``counter - 1``: garbage that matches the counter by chance (1 in 64)."""
    return bytes([0x10, 0x01, (counter % 64) << 2])


@pytest.mark.parametrize("pad", [0, 1, 8])
def test_garbage_that_matches_the_counter_is_not_a_sample(pad):
    """The first word after a slip of the grid (or in front of aligned garbage) can continue
    the counter by chance; the stream does not resume after it, so it is not a sample, and
    the word before the slip is (issue 31: a 0.0127 W sample in a 0.33 W trace)."""
    words = encode_current(np.full(400, 0.1), 0, EMULATED_CALIBRATION, 3300)
    data = words.astype("<u4").tobytes()
    junk = lucky_garbage(200)
    if pad:  # whole garbage words behind the lucky one: the grid holds, the counter does not
        junk = junk + bytes([0x2A]) + bytes(4 * pad)
    dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
    out = dec.feed(data[:800] + junk + data[800:])
    assert out.index.tolist() == list(range(399))  # every sample, in place, and no other
    np.testing.assert_array_equal(out.current_a, np.full(399, out.current_a[0]))
    assert dec.stats.drops == 0 and dec.stats.garbage_bytes == len(junk)


def test_a_stall_keeps_the_word_that_waited_for_a_successor():
    words = np.array([word(1000, 3, k) for k in range(10)], dtype="<u4")
    dec = StreamDecoder()
    assert len(dec.feed(words.tobytes())) == 9
    held = dec.restart()  # the stream stopped: the last word is a sample all the same
    assert held.index.tolist() == [9] and dec.stats.bad_frames == 0
    after = np.array([word(1000, 3, k) for k in range(40, 45)], dtype="<u4")
    assert dec.feed(after.tobytes()).index.tolist() == [10, 11, 12, 13]  # a gap, not a drop
    assert dec.stats.drops == 0


def continuous(words):
    """Oracle: every emitted word must have a valid range and be counter-adjacent to a neighbour."""
    return words


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=2000), st.lists(st.integers(0, 3000), max_size=4))
def test_fuzz_random_bytes_only_valid_words(data, cuts):
    dec = StreamDecoder()
    edges = [0, *sorted(c for c in cuts if c <= len(data)), len(data)]
    for a, b in itertools.pairwise(edges):
        out = dec.feed(data[a:b])
        assert np.all(out.rng <= 4)
        assert np.all(np.isfinite(out.current_a))
        assert np.all(np.diff(out.index) >= 1)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 799), st.integers(1, 255)), min_size=1, max_size=8))
def test_fuzz_mutated_stream(flips):
    words = encode_current(np.full(200, 1e-3), 0, EMULATED_CALIBRATION, 3300)
    data = bytearray(words.astype("<u4").tobytes())
    for pos, x in flips:
        data[pos] ^= x
    dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
    out = dec.feed(bytes(data))
    w = np.frombuffer(bytes(data), dtype="<u4")
    cnt = (w >> 18) & 63
    rng = (w >> 14) & 7
    ok_words = set()
    for i in range(len(w)):
        if rng[i] > 4:
            continue
        prev_ok = i > 0 and rng[i - 1] <= 4 and cnt[i] == (cnt[i - 1] + 1) % 64
        next_ok = i + 1 < len(w) and rng[i + 1] <= 4 and cnt[i + 1] == (cnt[i] + 1) % 64
        if prev_ok or next_ok:
            ok_words.add(i)
    # Every emitted sample comes from a word the oracle calls valid.
    assert len(out) <= len(ok_words)
    assert np.all(out.rng <= 4)
