"""UM24C/UM25C/UM34C frames: built field by field from the reference table, parsed back."""

import struct

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from power_meter.um import (
    FRAME_LEN,
    FrameError,
    UMReading,
    build_frame,
    find_frames,
    parse_frame,
    validate_frame,
)

IDS = {"UM24C": 0x0963, "UM25C": 0x09C9, "UM34C": 0x0D4C}
XOR_BYTES = [1, 3, 7, 9, 15, 17, 19, 23, 31, 39, 41, 45, 49, 53, 55, 57, 59, 63, 67, 69, 73]
XOR_BYTES += [79, 83, 89, 97, 99, 109, 111, 113, 119, 121, 127]


def hand_frame(model, v_raw, a_raw, p_raw, extra=None):
    """A frame assembled directly from the reference table, independent of build_frame."""
    f = bytearray(FRAME_LEN)
    f[0:2] = IDS[model].to_bytes(2, "big")
    f[2:4] = v_raw.to_bytes(2, "big")
    f[4:6] = a_raw.to_bytes(2, "big")
    f[6:10] = p_raw.to_bytes(4, "big")
    f[10:12] = (31).to_bytes(2, "big")
    f[12:14] = (88).to_bytes(2, "big")
    f[14:16] = (3).to_bytes(2, "big")
    for g in range(10):
        f[16 + 8 * g : 20 + 8 * g] = (100 + g).to_bytes(4, "big")
        f[20 + 8 * g : 24 + 8 * g] = (500 + g).to_bytes(4, "big")
    f[96:98] = (62).to_bytes(2, "big")
    f[98:100] = (7).to_bytes(2, "big")
    f[100:102] = (2).to_bytes(2, "big")
    f[102:106] = (11).to_bytes(4, "big")
    f[106:110] = (55).to_bytes(4, "big")
    f[110:112] = (15).to_bytes(2, "big")
    f[112:116] = (3600).to_bytes(4, "big")
    f[116:118] = (1).to_bytes(2, "big")
    f[118:120] = (2).to_bytes(2, "big")
    f[120:122] = (4).to_bytes(2, "big")
    f[122:126] = (123).to_bytes(4, "big")
    f[126:128] = (1).to_bytes(2, "big")
    if model == "UM34C":
        x = 0
        for i in XOR_BYTES:
            x ^= f[i]
        f[128] = 0x80
        f[129] = x
    else:
        f[128:130] = b"\xff\xf1"
    return bytes(f)


@pytest.mark.parametrize(
    ("model", "v", "a"),
    [("UM24C", 5.12, 1.234), ("UM25C", 5.123, 1.2345), ("UM34C", 20.01, 3.456)],
)
def test_hand_built_frame_parses_at_model_scaling(model, v, a):
    vs, cs = (0.001, 0.0001) if model == "UM25C" else (0.01, 0.001)
    f = hand_frame(model, round(v / vs), round(a / cs), 6321)
    r = parse_frame(f)
    assert r.model == model
    assert r.voltage_v == pytest.approx(v, abs=1e-9)
    assert r.current_a == pytest.approx(a, abs=1e-9)
    assert r.power_w == pytest.approx(6.321)
    assert (r.temperature_c, r.temperature_f, r.group) == (31, 88, 3)
    assert r.groups_mah_mwh[7] == (107, 507)
    assert (r.dplus_v, r.dminus_v, r.charge_mode) == (0.62, 0.07, 2)
    assert (r.record_mah, r.record_mwh, r.record_threshold_a) == (11, 55, 0.15)
    assert (r.record_seconds, r.recording, r.screen_timeout_min, r.brightness) == (3600, 1, 2, 4)
    assert (r.load_ohm, r.screen) == (12.3, 1)


@pytest.mark.parametrize("model", ["UM24C", "UM25C", "UM34C"])
def test_build_frame_matches_hand_frame(model):
    f = hand_frame(model, 512, 345, 1767)
    r = parse_frame(f)
    g = bytearray(build_frame(r))
    if model == "UM34C":
        g[128] = 0x80  # byte 128 is not covered by the UM34C checksum
    assert bytes(g) == f


def test_um25c_scaling_differs():
    """rd-usb #3: the UM25C reports mV and 0.1 mA."""
    f = hand_frame("UM25C", 5000, 10000, 5000)
    r = parse_frame(f)
    assert (r.voltage_v, r.current_a) == (5.0, 1.0)
    f = hand_frame("UM24C", 500, 1000, 5000)
    assert (parse_frame(f).voltage_v, parse_frame(f).current_a) == (5.0, 1.0)


def test_um34c_checksum_and_end_marker_are_checked():
    f = bytearray(hand_frame("UM34C", 500, 100, 500))
    f[129] ^= 1
    with pytest.raises(FrameError, match="byte 129"):
        validate_frame(bytes(f))
    f = bytearray(hand_frame("UM34C", 500, 100, 500))
    f[XOR_BYTES[5]] ^= 0x10  # a covered byte
    with pytest.raises(FrameError, match="checksum"):
        validate_frame(bytes(f))
    f = bytearray(hand_frame("UM24C", 500, 100, 500))
    f[128] = 0
    with pytest.raises(FrameError, match="128-129"):
        validate_frame(bytes(f))
    with pytest.raises(FrameError, match="bytes 0-1"):
        validate_frame(b"\x12\x34" + bytes(128))
    with pytest.raises(FrameError, match="length"):
        validate_frame(b"")


def test_resync_skips_garbage_and_bad_frames():
    good = hand_frame("UM34C", 500, 100, 500)
    bad = bytearray(good)
    bad[129] ^= 0xFF
    buf = b"\x0d\x4cjunk" + bytes(bad) + good + good[:40]
    r = find_frames(buf, "UM34C")
    assert r.frames == [good]
    assert r.bad == 2  # the fake id at the start, then the bad checksum
    assert r.consumed == len(buf) - 40  # the incomplete frame waits for more bytes


def oracle_valid(frame):
    """An independent statement of validity from the reference table."""
    mid = struct.unpack(">H", frame[:2])[0]
    if mid == IDS["UM34C"]:
        x = 0
        for i in XOR_BYTES:
            x ^= frame[i]
        return frame[129] == x
    return mid in (IDS["UM24C"], IDS["UM25C"]) and frame[128:130] == b"\xff\xf1"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([None, "UM24C", "UM25C", "UM34C"]))
def test_fuzz_random_bytes(data, model):
    r = find_frames(data, model)
    assert 0 <= r.consumed <= len(data)
    for f in r.frames:
        assert len(f) == FRAME_LEN and oracle_valid(f)
        parse_frame(f)


@settings(max_examples=400, deadline=None)
@given(
    st.sampled_from(["UM24C", "UM25C", "UM34C"]),
    st.lists(st.tuples(st.integers(0, FRAME_LEN - 1), st.integers(1, 255)), min_size=1, max_size=4),
    st.integers(0, 130),
)
def test_fuzz_mutated_frames(model, flips, cut):
    f = bytearray(hand_frame(model, 500, 123, 615))
    for pos, x in flips:
        f[pos] ^= x
    f = bytes(f[: FRAME_LEN - cut]) if cut else bytes(f)
    r = find_frames(f, None)
    try:
        parse_frame(f)
        parsed = True
    except FrameError:
        parsed = False
    assert parsed == (len(f) == FRAME_LEN and oracle_valid(f))
    assert all(oracle_valid(x) for x in r.frames)


@given(st.floats(0, 65.0), st.floats(0, 6.0), st.floats(0, 300.0))
def test_round_trip_within_one_count(v, a, p):
    for model, (vs, cs) in {"UM24C": (0.01, 0.001), "UM25C": (0.001, 0.0001)}.items():
        r = parse_frame(build_frame(UMReading(model, v, a, p)))
        assert abs(r.voltage_v - min(v, 65535 * vs)) <= vs / 2 + 1e-9
        assert abs(r.current_a - min(a, 65535 * cs)) <= cs / 2 + 1e-9
        assert abs(r.power_w - p) <= 0.0005 + 1e-9
