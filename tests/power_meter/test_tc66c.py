"""TC66C replies: plaintext built field by field, encrypted with AES-256-ECB, parsed back."""

import contextlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from hypothesis import given, settings
from hypothesis import strategies as st

from power_meter.tc66c import (
    KEY,
    FrameError,
    build_plain,
    crc16_modbus,
    decrypt,
    encrypt,
    find_replies,
    parse_plain,
    parse_reply,
)

# The key as the open implementations publish it (signed Java bytes).
PUBLISHED_KEY = [88, 33, -6, 86, 1, -78, -16, 38, -121, -1, 18, 4, 98, 42, 79, -80]
PUBLISHED_KEY += [-122, -12, 2, 96, -127, 111, -102, 11, -89, -15, 6, 97, -102, -72, 114, -120]


def test_key_matches_published_key():
    assert bytes(b & 0xFF for b in PUBLISHED_KEY) == KEY


def test_crc16_modbus_check_value():
    assert crc16_modbus(b"123456789") == 0x4B37
    assert crc16_modbus(b"") == 0xFFFF


def crc_bitwise(data):
    c = 0xFFFF
    for b in data:
        c ^= b
        for _ in range(8):
            c = (c >> 1) ^ 0xA001 if c & 1 else c >> 1
    return c


@given(st.binary(max_size=100))
def test_crc_table_matches_bitwise(data):
    assert crc16_modbus(data) == crc_bitwise(data)


def hand_plain():
    p = bytearray(192)
    p[0:4], p[64:68], p[128:132] = b"pac1", b"pac2", b"pac3"
    p[4:8], p[8:12] = b"TC66", b"1.14"
    struct.pack_into("<I", p, 12, 987654)
    struct.pack_into("<I", p, 44, 42)
    struct.pack_into("<I", p, 48, 51234)  # 5.1234 V
    struct.pack_into("<I", p, 52, 123456)  # 1.23456 A
    struct.pack_into("<I", p, 56, 63249)  # 6.3249 W
    struct.pack_into("<I", p, 68, 415)  # 41.5 Ohm
    struct.pack_into("<I", p, 72, 1200)
    struct.pack_into("<I", p, 76, 6100)
    struct.pack_into("<I", p, 88, 1)  # negative temperature
    struct.pack_into("<I", p, 92, 7)
    struct.pack_into("<I", p, 96, 61)
    struct.pack_into("<I", p, 100, 3)
    for o in (0, 64, 128):
        struct.pack_into("<H", p, o + 60, crc_bitwise(p[o : o + 60]))
    return bytes(p)


def aes(data):
    e = Cipher(algorithms.AES(KEY), modes.ECB()).encryptor()
    return e.update(data) + e.finalize()


def test_hand_built_reply_parses():
    r = parse_reply(aes(hand_plain()))
    assert (r.model, r.firmware, r.serial, r.runs) == ("TC66", "1.14", 987654, 42)
    assert (r.voltage_v, r.current_a, r.power_w) == (5.1234, 1.23456, 6.3249)
    assert (r.resistance_ohm, r.group0_mah, r.group0_mwh) == (41.5, 1200, 6100)
    assert (r.temperature_c, r.dplus_v, r.dminus_v) == (-7, 0.61, 0.03)


def test_build_plain_round_trip():
    r = parse_plain(hand_plain())
    assert parse_plain(build_plain(r)) == r
    assert decrypt(encrypt(hand_plain())) == hand_plain()


@pytest.mark.parametrize("block", [0, 1, 2])
def test_magic_and_crc_are_checked(block):
    p = bytearray(hand_plain())
    p[block * 64] ^= 1
    with pytest.raises(FrameError, match=f"block {block + 1}.*pac"):
        parse_plain(bytes(p))
    p = bytearray(hand_plain())
    p[block * 64 + 30] ^= 1
    with pytest.raises(FrameError, match=f"block {block + 1}.*CRC"):
        parse_plain(bytes(p))


def test_resync_finds_reply_after_garbage():
    c = aes(hand_plain())
    r = find_replies(b"\x00" * 5 + c[:100] + b"zz" + c)
    assert len(r.plains) == 1 and r.plains[0] == hand_plain()


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=500))
def test_fuzz_random_bytes(data):
    r = find_replies(data)
    assert r.consumed <= len(data)
    for p in r.plains:
        parse_plain(p)
    with contextlib.suppress(FrameError):
        parse_reply(data)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 191), st.integers(1, 255)), min_size=1, max_size=3))
def test_fuzz_mutated_ciphertext_never_yields_a_sample(flips):
    c = bytearray(aes(hand_plain()))
    for pos, x in flips:
        c[pos] ^= x
    if bytes(c) == aes(hand_plain()):  # the flips cancelled out
        return
    # Any change to the ciphertext scrambles a whole AES block, which breaks a CRC or magic.
    with pytest.raises(FrameError):
        parse_reply(bytes(c))
    assert find_replies(bytes(c)).plains == []
