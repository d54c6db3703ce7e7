import json

import numpy as np
import pytest
from helpers import SPACES
from hypothesis import given, settings
from hypothesis import strategies as st

from edgenas import Arch, ArchError, SpaceError, get_space
from edgenas.cli.args import parse_arch
from edgenas.space import make_divisible


def test_registry_lists_presets_and_rejects_unknown_names():
    assert {"tiny", "cifar-mbv3", "ofa-mbv3"} <= set(SPACES)
    with pytest.raises(SpaceError, match="unknown space 'mobilenet'.*ofa-mbv3"):
        get_space("mobilenet")


def test_ofa_mbv3_matches_ofa_definition():
    sp = get_space("ofa-mbv3")
    assert [s.width for s in sp.stages] == [24, 40, 80, 112, 160]
    assert [s.stride for s in sp.stages] == [2, 2, 2, 1, 2]
    assert [s.act for s in sp.stages] == ["relu", "relu", "h_swish", "h_swish", "h_swish"]
    assert [s.se for s in sp.stages] == [False, True, False, True, True]
    assert sp.resolutions == tuple(range(128, 225, 4)) and len(sp.resolutions) == 25
    assert (sp.ks_choices, sp.e_choices, sp.d_choices) == ((3, 5, 7), (3, 4, 6), (2, 3, 4))
    assert sp.n_layers == 20 and sp.n_genes == 46


def test_digest_identifies_the_definition():
    assert len({get_space(n).digest() for n in SPACES}) == len(SPACES)
    assert get_space("tiny").digest() == get_space("tiny").digest()


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_round_trips_for_random_archs(name, seed):
    sp = get_space(name)
    arch = sp.sample(np.random.default_rng(seed))
    assert sp.decode(sp.encode(arch)) == arch
    assert Arch.from_dict(arch.to_dict()) == arch
    assert sp.arch(json.loads(arch.to_json())) == arch
    assert hash(arch) == hash(Arch.from_dict(arch.to_dict()))


@pytest.mark.parametrize("name", SPACES)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_every_vector_in_bounds_is_an_arch(name, data):
    sp = get_space(name)
    vec = np.array([data.draw(st.integers(0, int(n) - 1)) for n in sp.n_choices])
    arch = sp.decode(vec)
    assert np.array_equal(sp.encode(arch), vec)
    assert sp.validate(arch) is arch


def test_canonical_ignores_inactive_layers():
    sp = get_space("ofa-mbv3")
    a = sp.min_arch()  # depth 2 everywhere: slots 2, 3 of each stage are inactive
    ks = list(a.ks)
    ks[3] = 7
    b = Arch(tuple(ks), a.e, a.d, a.r)
    assert a != b
    assert sp.canonical(a) == sp.canonical(b)
    assert sp.canonical(sp.max_arch()) == sp.max_arch()


def test_ofa_dict_with_list_resolution_and_missing_r():
    sp = get_space("ofa-mbv3")
    d = sp.max_arch().to_dict()
    d["r"] = [160]
    assert sp.arch(d).r == 160
    del d["r"]
    assert sp.arch(d).r == 224


@pytest.mark.parametrize(
    "mutate, message",
    [
        (lambda d: d.update(ks=d["ks"][:-1]), r"'ks' has 19 entries; space 'ofa-mbv3' needs 20"),
        (lambda d: d["e"].__setitem__(3, 5), r"'e'\[3\] = 5 is not one of \[3, 4, 6\]"),
        (lambda d: d["d"].__setitem__(0, 1), r"'d'\[0\] = 1 is not one of \[2, 3, 4\]"),
        (lambda d: d.update(r=225), r"resolution r = 225 is not one of"),
        (lambda d: d.pop("e"), r"missing 'e'"),
        (lambda d: d.update(width=1.2), r"unknown key\(s\) \['width'\]"),
        (lambda d: d.update(w=[1.0] * 5), r"arch has 'w' but space 'ofa-mbv3' fixes it per stage"),
        (lambda d: d.update(w=1.2), r"'w' must be a list of numbers"),
        (lambda d: d.update(ks="777"), r"'ks' must be a list"),
        (lambda d: d["ks"].__setitem__(0, "7"), r"'ks' holds a non-number: '7'"),
        (lambda d: d["ks"].__setitem__(0, 3.5), r"'ks' must hold integers"),
    ],
)
def test_invalid_archs_name_field_and_value(mutate, message):
    sp = get_space("ofa-mbv3")
    d = sp.max_arch().to_dict()
    mutate(d)
    with pytest.raises(ArchError, match=message):
        sp.arch(d)


def test_decode_rejects_bad_vectors():
    sp = get_space("tiny")
    with pytest.raises(ArchError, match="shape"):
        sp.decode(np.zeros(3, dtype=int))
    vec = np.zeros(sp.n_genes, dtype=int)
    vec[-1] = 7
    with pytest.raises(ArchError, match=f"gene {sp.n_genes - 1} = 7 is outside 0..2"):
        sp.decode(vec)


def test_parse_arch_forms(tmp_path):
    sp = get_space("tiny")
    assert parse_arch(sp, "max") == sp.max_arch()
    assert parse_arch(sp, "min") == sp.min_arch()
    assert parse_arch(sp, "random:7") == parse_arch(sp, "random:7")
    assert parse_arch(sp, "random:7") != parse_arch(sp, "random:8")
    arch = parse_arch(sp, "random:3")
    f = tmp_path / "a.json"
    f.write_text(arch.to_json())
    assert parse_arch(sp, f"@{f}") == arch
    assert parse_arch(sp, arch.to_json()) == arch
    assert parse_arch(sp, json.dumps({"arch": arch.to_dict(), "top1": 0.9})) == arch
    with pytest.raises(ArchError, match="not valid JSON"):
        parse_arch(sp, "{ks: [3]}")
    with pytest.raises(ArchError, match="cannot read arch file"):
        parse_arch(sp, f"@{tmp_path / 'missing.json'}")
    with pytest.raises(ArchError, match="random:SEED"):
        parse_arch(sp, "random:abc")


def test_sampling_is_seeded_and_canonical():
    sp = get_space("ofa-mbv3")
    a = sp.sample_vectors(np.random.default_rng(5), 64)
    b = sp.sample_vectors(np.random.default_rng(5), 64)
    assert np.array_equal(a, b)
    assert np.array_equal(sp.canonical_vectors(a), a)
    assert len({tuple(v) for v in a}) == 64


def test_make_divisible_matches_ofa():
    assert [make_divisible(v) for v in (16, 24 * 3, 40 * 4, 12, 3)] == [16, 72, 160, 16, 8]


def test_elastic_activation_and_se_are_per_stage_genes():
    """tiny-mixed chooses (activation, SE) per stage; spaces that fix them keep their genes, arch JSON and digest."""
    sp, fixed = get_space("tiny-mixed"), get_space("tiny")
    assert sp.n_genes == fixed.n_genes + sp.n_stages and len(sp.styles) == 4
    assert "act_choices" not in fixed.to_dict() and "se_choices" not in fixed.to_dict()
    arch = sp.arch({"ks": [3] * 6, "e": [2] * 6, "d": [1, 2, 1], "r": 16, "act": ["relu", "h_swish", "relu"], "se": [0, 1, 1]})
    assert [(b.act, b.se) for b in sp.net_spec(arch).blocks[1:]] == [("relu", False), ("h_swish", True), ("h_swish", True),
                                                                      ("relu", True)]
    assert sp.decode(sp.encode(arch)) == arch and json.loads(arch.to_json())["se"] == [0, 1, 1]
    assert sp.max_arch().act == ("h_swish",) * 3 and sp.min_arch().se == (False,) * 3
    assert sp.n_archs() == fixed.n_archs() * 4**3
    d = arch.to_dict()
    with pytest.raises(ArchError, match=r"'act'\[1\] = 'swish' is not one of \['relu', 'h_swish'\]"):
        sp.arch({**d, "act": ["relu", "swish", "relu"]})
    with pytest.raises(ArchError, match=r"'se' has 2 entries; space 'tiny-mixed' needs 3"):
        sp.arch({**d, "se": [0, 1]})
    with pytest.raises(ArchError, match="'se' must be a list of 0/1"):
        sp.arch({**d, "se": [0, 2, 1]})
    with pytest.raises(ArchError, match="space 'tiny' fixes it per stage"):
        fixed.arch(d)
