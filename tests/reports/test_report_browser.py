"""The report in a real browser: headless Chromium renders the page, the screenshot is not
blank, and every embedded image decodes to a picture with content (pixel variance).

Chromium is a Debian package (``chromium``); ``make test`` installs it when missing and
running as root. Without it the test is skipped with a message saying so."""

from __future__ import annotations

import base64
import io
import json
import shutil
import subprocess

import pytest
from report_html import parse_report

from reports import build_report


def _browser() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def _variance(png: bytes) -> float:
    """Pixel variance of a PNG over its grey levels (0 for a single-colour image)."""
    from PIL import Image, ImageStat

    img = Image.open(io.BytesIO(png)).convert("L")
    return ImageStat.Stat(img).var[0]


def test_the_report_renders_in_headless_chromium_and_no_image_is_blank(fake_run, tmp_path):
    browser = _browser()
    if browser is None:
        pytest.skip("chromium not installed (make test installs it: apt-get install chromium)")
    root, _ = fake_run
    files = build_report(root, tmp_path / "out")
    shot = tmp_path / "page.png"
    cmd = [
        browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
        "--disable-dev-shm-usage", f"--user-data-dir={tmp_path / 'profile'}",
        "--window-size=1100,6000", f"--screenshot={shot}", files.html.as_uri(),
    ]  # fmt: skip
    subprocess.run(cmd, capture_output=True, timeout=120, check=True)
    page = shot.read_bytes()
    assert page.startswith(b"\x89PNG")
    assert _variance(page) > 100, "the rendered page is (nearly) one colour"
    parsed = parse_report(files.html)
    assert parsed.images
    for src in parsed.images:
        png = base64.b64decode(src.split(",", 1)[1])
        assert _variance(png) > 50, "an embedded figure is blank"
    assert parsed.verdict and "headline" in parsed.tables
    records = json.loads((root / "results.json").read_text())
    assert {str(r["policy"]) for r in records} <= {row[0] for row in parsed.tables["headline"]}
