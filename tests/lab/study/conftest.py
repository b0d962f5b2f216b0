"""The study tests' tiny bundle, compressed once for the package."""

import pytest
from bundle_builder import write_corpus

from device_profiles import load_profile
from lab.compression.budget import TEST
from lab.compression.options import CompressOptions
from lab.compression.pipeline import compress, load_lm_data


@pytest.fixture(scope="package")
def tiny_bundle(tmp_path_factory):
    """A bundle from the real pipeline (test budget, measured table, dense-top deadlines)."""
    root = tmp_path_factory.mktemp("study")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("RT3LAB_CACHE", str(root / "cache"))
        wiki = write_corpus(root / "wikitext2")
        data = load_lm_data(f"wikitext2:{wiki}", TEST)
        opts = CompressOptions("rt3-paper", root / "bundle", TEST, seed=1, threads=1)
        compress(data, load_profile("rt3-paper"), opts)
    return root
