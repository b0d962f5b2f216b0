"""`rt3lab bench meter`: the numpy anchor decodes what `StreamDecoder` decodes, and the JSON
reports both rates."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from power_meter.bench import app, numpy_anchor
from power_meter.emulators.ppk2 import EMULATED_CALIBRATION
from power_meter.ppk2 import StreamDecoder, encode_current


@pytest.mark.parametrize("chunk", [4096, 1001, 65536])
def test_anchor_and_decoder_give_identical_samples(chunk):
    # every range, changing often, and one corrupt byte: a word's range bit 2 set on a
    # range 1-3 word makes range 5-7, which both decoders must skip
    rs = np.random.default_rng(3)
    current = np.exp(rs.uniform(np.log(2e-6), np.log(1.0), 20_000))
    words = encode_current(current, 9, EMULATED_CALIBRATION, 3300, logic=0x5A)
    assert set(((words >> 14) & 7).tolist()) == {0, 1, 2, 3, 4}
    hit = 7_001 + int(np.flatnonzero(np.isin((words[7_001:] >> 14) & 7, [1, 2, 3]))[0])
    data = bytearray(words.astype("<u4").tobytes())
    data[4 * hit + 2] |= 0x01
    data = bytes(data)

    dec = StreamDecoder(EMULATED_CALIBRATION, 3300)
    ours = np.concatenate(
        [dec.feed(data[i : i + chunk]).current_a for i in range(0, len(data), chunk)]
    )
    anchor = numpy_anchor(data, EMULATED_CALIBRATION, 3300, chunk)

    assert dec.stats.bad_frames == 1 and dec.stats.drops == 1  # the corrupt word, skipped
    assert len(anchor) == len(current) - 1 and len(ours) == len(anchor) - 1  # last held back
    np.testing.assert_array_equal(ours, anchor[:-1])  # bit for bit
    np.testing.assert_allclose(ours, np.delete(current, hit)[:-1], rtol=2e-3, atol=1e-7)


def test_bench_meter_json_reports_the_anchor_beside_ours():
    r = CliRunner().invoke(app, ["--seconds", "0.2", "--repeat", "1", "--json"])
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["ppk2_samples_per_s"] > 0 and out["numpy_anchor_samples_per_s"] > 0
    assert out["ppk2_over_numpy_anchor"] == pytest.approx(
        out["ppk2_samples_per_s"] / out["numpy_anchor_samples_per_s"]
    )
