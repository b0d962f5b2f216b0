"""--scheme as one concept: the registry, bundle.json's scheme, and the one-line refusals."""

import json

import pytest

from contracts.schemes import SchemeError
from lab.cli import main
from lab.compression.schemes import scheme_builder
from lab.runtime.bundle import Bundle
from lab.runtime.synthetic import synthetic_bundle

CONFIG = {"vocab_size": 50, "emb": 16, "ff": 8, "layers": 1, "heads": 2}


def _exit_2_one_line(args, capsys) -> str:
    with pytest.raises(SystemExit) as exc:
        main(args)
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


@pytest.fixture
def rt3_bundle(tmp_path):
    return synthetic_bundle(tmp_path / "b", CONFIG, {"bp": 0.5}, block_rows=8, block_cols=8)


def _set_scheme(root, scheme):
    doc = json.loads((root / "bundle.json").read_text())
    if scheme is None:
        doc.pop("scheme")
    else:
        doc["scheme"] = scheme
    (root / "bundle.json").write_text(json.dumps(doc))


def test_bundle_json_records_the_scheme_and_an_old_bundle_reads_as_rt3(rt3_bundle):
    assert json.loads((rt3_bundle / "bundle.json").read_text())["scheme"] == "rt3"
    _set_scheme(rt3_bundle, None)
    assert Bundle.load(rt3_bundle).scheme == "rt3"
    _set_scheme(rt3_bundle, "width")
    assert Bundle.load(rt3_bundle).scheme == "width"


def test_an_unknown_scheme_in_bundle_json_is_refused_naming_the_field(rt3_bundle):
    _set_scheme(rt3_bundle, "wide")
    with pytest.raises(ValueError, match="field scheme: unknown scheme 'wide'"):
        Bundle.load(rt3_bundle)


def test_a_bundle_of_one_scheme_loaded_as_another_is_refused(rt3_bundle, capsys):
    with pytest.raises(SchemeError, match="bundle of scheme 'rt3', loaded as 'width'"):
        Bundle.load(rt3_bundle, scheme="width")
    err = _exit_2_one_line(["evaluate", "--bundle", str(rt3_bundle), "--scheme", "width"], capsys)
    assert "bundle of scheme 'rt3', loaded as 'width'" in err


def test_compress_refuses_a_latency_table_bundle_of_another_scheme(rt3_bundle, tmp_path, capsys):
    (rt3_bundle / "latency_table.json").write_text("{}")
    args = ["compress", "--out", str(tmp_path / "o"), "--scheme", "rt3"]
    _set_scheme(rt3_bundle, "width")
    err = _exit_2_one_line([*args, "--latency-table", str(rt3_bundle)], capsys)
    assert "bundle of scheme 'width', loaded as 'rt3'" in err


def test_an_unknown_scheme_is_exit_2_one_line(tmp_path, capsys):
    err = _exit_2_one_line(["compress", "--out", str(tmp_path / "o"), "--scheme", "wide"], capsys)
    assert "unknown scheme 'wide'" in err


@pytest.mark.parametrize("scheme", ["depth", "early-exit"])
def test_a_scheme_not_built_yet_says_so_in_one_line(scheme, tmp_path, capsys):
    try:
        scheme_builder(scheme)
    except SchemeError:
        pass
    else:
        pytest.skip(f"{scheme} is built on this branch")
    err = _exit_2_one_line(["compress", "--out", str(tmp_path / "o"), "--scheme", scheme], capsys)
    assert "not built yet" in err


def test_a_command_that_runs_sets_refuses_a_scheme_it_does_not_run(rt3_bundle, capsys):
    from lab.runtime.bundle import SET_SCHEMES

    other = next(s for s in ("depth", "early-exit") if s not in SET_SCHEMES)
    _set_scheme(rt3_bundle, other)
    args = ["export", "--bundle", str(rt3_bundle), "--out", str(rt3_bundle.parent / "x")]
    err = _exit_2_one_line(args, capsys)
    assert f"bundle of scheme '{other}'" in err and "does not run it yet" in err


def test_rt3_runs_keep_their_run_key(wiki_dir):
    """The scheme option is not part of an rt3 run's key: a bundle compress wrote before
    schemes existed is still up to date for the same command."""
    from device_profiles import load_profile
    from lab.compression.budget import TEST
    from lab.compression.cache import cache_key
    from lab.compression.compressor import Compressor
    from lab.compression.options import CompressOptions, SilentReporter
    from lab.compression.pipeline import load_lm_data, run_key_of
    from lab.compression.tasks import LMTask

    task = LMTask(load_lm_data(f"wikitext2:{wiki_dir}", TEST), TEST)
    profile = load_profile("rt3-paper")
    c = Compressor(
        task, profile, CompressOptions("rt3-paper", wiki_dir / "o", TEST), SilentReporter()
    )
    before = {  # the key as compress computed it before --scheme
        "v": 1,
        **task.fingerprint(),
        "profile": profile.model_dump(mode="json"),
        "options": {
            k: str(v) for k, v in vars(c.opts).items() if k not in ("out", "episodes", "scheme")
        },
        "episodes": 3,
        "bp": c.bp_config.to_dict(),
    }
    assert "scheme" not in before["options"]
    assert run_key_of(c, episodes=3, bp=c.bp_config.to_dict()) == cache_key(before)
