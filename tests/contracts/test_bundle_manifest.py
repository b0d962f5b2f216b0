"""The bundle manifest is read once: both readers give the same message for the same
defect, each as its own error type; its docstring examples run."""

import doctest
import json
import warnings

import pytest

from contracts import bundle_manifest as M
from lab.runtime.bundle import Bundle, BundleError
from lab.runtime.synthetic import synthetic_bundle
from simulator.bundle import variants_from_bundle
from simulator.errors import SimulatorInputError

SMALL = {"vocab_size": 50, "emb": 16, "ff": 8, "layers": 1, "heads": 2}


def test_docstring_examples_run():
    assert doctest.testmod(M).failed == 0


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    return synthetic_bundle(tmp_path_factory.mktemp("b") / "bundle", config=SMALL)


def _copy(good, tmp_path, edit=None):
    import shutil

    root = shutil.copytree(good, tmp_path / "b")
    if edit is not None:
        doc = json.loads((root / M.MANIFEST).read_text())
        edit(doc)
        (root / M.MANIFEST).write_text(json.dumps(doc))
    return root


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda d: d.update(format="x"), "field format is 'x', expected 'rt3lab-bundle'"),
        (lambda d: d.update(version=2), "field version is 2, expected 1"),
        (lambda d: d.update(sets=[]), "field sets is empty"),
        (lambda d: d["sets"][1].update(name=".hidden"), "sets[1].name '.hidden' must match"),
        (lambda d: d["sets"].append(dict(d["sets"][0])), "sets[4].name 'bp' appears twice"),
        (lambda d: d["sets"][0].update(file="/etc/x"), "sets[0].file '/etc/x' must be a path"),
        (lambda d: d.update(checksums={"a": "zz"}), "field checksums must map file names"),
        (lambda d: d["checksums"].pop("dense.safetensors"), "no entry for dense.safetensors"),
    ],
)
def test_both_readers_refuse_a_defect_with_one_message(good, tmp_path, edit, says):
    root = _copy(good, tmp_path, edit)
    with pytest.raises(BundleError) as lab_error:
        Bundle.load(root)
    with pytest.raises(SimulatorInputError) as sim_error:
        variants_from_bundle(root)
    assert says in str(lab_error.value) and says in str(sim_error.value)


def test_a_damaged_weight_file_and_a_missing_manifest_are_named(good, tmp_path):
    root = _copy(good, tmp_path)
    (root / "backbone.safetensors").write_bytes(b"\0" * 16)
    for read, error in ((Bundle.load, BundleError), (variants_from_bundle, SimulatorInputError)):
        with pytest.raises(error, match=r"backbone\.safetensors: SHA-256 [0-9a-f]{16}\.\.\."):
            read(root)
    for read, error in ((Bundle.load, BundleError), (variants_from_bundle, SimulatorInputError)):
        with pytest.raises(error, match=r"bundle\.json: not found"):
            read(tmp_path)


def test_without_checksums_both_readers_warn_once_and_load(good, tmp_path):
    root = _copy(good, tmp_path, lambda d: d.pop("checksums"))
    for read in (Bundle.load, variants_from_bundle):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            read(root)
        assert [w.category for w in caught] == [M.BundleWarning], read
