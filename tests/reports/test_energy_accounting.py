"""Issue 33: the report states the energy each policy drew against the battery's nominal
energy, and why a battery model gives more (Thevenin's OCV above the nominal voltage,
Peukert below its rated current) or exactly nominal (ideal)."""

from __future__ import annotations

import json

import pytest
from report_html import number, parse_report

from device_profiles import resolve_profile_path
from reports import build_report
from simulator import simulate, write_run


@pytest.fixture(scope="module")
def three_batteries(tmp_path_factory):
    root = tmp_path_factory.mktemp("energy") / "run"
    results = [simulate("rt3-paper", battery_model=m) for m in ("ideal", "thevenin", "peukert")]
    write_run(root, results)
    (root / "profile.yaml").write_text(resolve_profile_path("rt3-paper").read_text())
    return root


def test_delivered_against_nominal_per_policy_with_the_reason(three_batteries, tmp_path):
    files = build_report(three_batteries, tmp_path / "r")
    parsed = parse_report(files.html)
    table = parsed.tables["energy"]
    header = table[0]
    assert header == ["policy", "battery model", "delivered (J)", "nominal (J)",
                      "delivered / nominal", "why they differ"]  # fmt: skip
    rows = {row[1]: dict(zip(header, row, strict=True)) for row in table[1:]}
    records = json.loads((three_batteries / "results.json").read_text())
    for r in records:
        row = rows[r["battery_model"]]
        assert number(row["delivered (J)"]) == pytest.approx(r["energy_j"], abs=0.05)
        assert number(row["nominal (J)"]) == 37800.0
    assert rows["ideal"]["delivered / nominal"] == "100.00 %"
    assert rows["ideal"]["why they differ"] == "an ideal battery delivers its nominal energy"
    # About 40,360 J of 37,800 J: the OCV table averages 3.739 V against 3.5 V nominal.
    assert number(rows["thevenin"]["delivered (J)"]) > 40000
    assert rows["thevenin"]["why they differ"] == (
        "OCV averages 3.739 V over the charge, above the 3.5 V nominal"
    )
    # Rated current: 3000 mAh over 20 h = 150 mA; rt3 draws far less on average.
    why = rows["peukert"]["why they differ"]
    assert why.startswith("mean current ") and why.endswith("below the rated 150.0 mA")
    notes = " ".join(parsed.notes["energy"])
    assert "Thevenin:" in notes and "Peukert:" in notes and "ideal battery" in notes
