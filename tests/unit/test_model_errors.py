"""A bad topology file gets one error naming the file, the line and the field."""

from __future__ import annotations

from pathlib import Path

import pytest
from anycastlab.errors import TopologyError
from anycastlab.model import load_topology
from minimal_topology import GOOD, error_for, write


def test_good_file_loads(tmp_path: Path) -> None:
    topo = load_topology(write(tmp_path, GOOD))
    assert [p.name for p in topo.pops] == ["ams", "ord"]
    assert str(topo.anycast) == "198.51.100.10/32" and topo.asn == 13335
    assert topo.bgp.timers == (3, 9)


def test_invalid_yaml_names_line(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("  - name: ord\n", "  - name: ord\n   bad: [\n"))
    assert err.path.endswith("topo.yaml") and err.line is not None and err.line >= 8
    assert "invalid YAML" in str(err)


def test_unknown_upstream(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("upstreams: [tb]\n  - name", "upstreams: [tb]\n  - name").replace(
        "    upstreams: [ta]\n", "    upstreams: [telai]\n", 1))
    assert (err.line, err.field) == (7, "pops[0].upstreams[0]")
    assert "unknown transit 'telai'" in err.message and "ta, tb" in err.message
    assert str(err).startswith(f"{err.path}:7: pops[0].upstreams[0]:")


def test_duplicate_name(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("  - name: ord\n", "  - name: ams\n"))
    assert (err.line, err.field) == (8, "pops[1].name")
    assert "duplicate name 'ams'" in err.message


def test_duplicate_name_across_kinds(tmp_path: Path) -> None:
    text = GOOD.replace("{name: ispa,", "{name: ta,").replace("upstreams: [ta], clients", "upstreams: [tb], clients")
    err = error_for(tmp_path, text)
    assert err.field == "eyeballs[0].name" and err.line == 11


def test_asn_out_of_range(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("asn: 64511", "asn: 4294967296"))
    assert (err.line, err.field) == (4, "transits[1].asn")
    assert "out of range" in err.message


def test_reserved_asn(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("asn: 64511", "asn: 23456"))
    assert err.field == "transits[1].asn"


def test_duplicate_asn(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("asn: 64520", "asn: 64510"))
    assert (err.line, err.field) == (11, "eyeballs[0].asn") and "duplicate ASN 64510" in err.message


def test_address_conflict_between_anycast_and_origin(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("origin:\n", "origin:\n  prefix: 198.51.100.0/24\n"))
    assert err.field == "origin.prefix" and err.line == 13
    assert "overlaps the anycast address" in err.message


def test_address_conflict_with_lab_pool(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("clients: 2}", "clients: 2, prefix: 10.0.3.0/24}"))
    assert err.field == "eyeballs[0].prefix" and "link pool" in err.message


def test_the_pop_unicast_pool_is_kept_free(tmp_path: Path) -> None:
    err = error_for(tmp_path, "anycast: 192.0.2.7/32\n" + GOOD)
    assert (err.line, err.field) == (1, "anycast") and "PoP unicast pool 192.0.2.0/24" in err.message


def test_anycast_must_be_host_route(tmp_path: Path) -> None:
    err = error_for(tmp_path, "anycast: 198.51.100.0/24\n" + GOOD)
    assert (err.line, err.field) == (1, "anycast") and "/32" in err.message


def test_unknown_field(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("    upstreams: [ta]\n", "    upstreams: [ta]\n    upstream: [tb]\n", 1))
    assert (err.line, err.field) == (8, "pops[0].upstream")
    assert err.message == "unknown field 'upstream' (did you mean 'upstreams'?)"


def test_missing_field(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("origin:\n  upstreams: [tb]\n", "origin:\n"))
    assert err.field == "origin.upstreams" and "missing" in err.message


def test_conflicting_relations(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("{name: tb, asn: 64511}", "{name: tb, asn: 64511, upstreams: [ta]}"))
    assert err.field == "transits[1].upstreams[0]" and "different relations" in err.message


def test_backbone_unknown_pop(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD + "backbone:\n  - [ams, xyz]\n")
    assert (err.line, err.field) == (16, "backbone[0][1]") and "unknown PoP 'xyz'" in err.message


def test_bad_name(tmp_path: Path) -> None:
    err = error_for(tmp_path, GOOD.replace("name: ams", "name: Amsterdam-1"))
    assert err.field == "pops[0].name" and "not a valid name" in err.message


def test_unreadable_file(tmp_path: Path) -> None:
    with pytest.raises(TopologyError) as info:
        load_topology(tmp_path / "nope.yaml")
    assert "cannot read" in str(info.value)


@pytest.mark.parametrize("name", ["default", "small"])
def test_shipped_topologies_load(topologies_dir: Path, name: str) -> None:
    load_topology(topologies_dir / f"{name}.yaml")


# -- wording: typos name the key and suggest the field; no pydantic phrasing reaches the user ------------

def test_a_typo_in_a_required_field_names_the_key_and_suggests_the_field(tmp_path: Path) -> None:
    typo = GOOD.replace("  - name: ord\n    upstreams: [tb]\n", "  - name: ord\n    upstream: [tb]\n")
    err = error_for(tmp_path, typo)
    assert (err.line, err.field) == (9, "pops[1].upstream")
    assert err.message == "unknown field 'upstream' (did you mean 'upstreams'?)"


@pytest.mark.parametrize(("change", "field", "words"), [
    (("transits:", "transit:"), "transit", "unknown field 'transit' (did you mean 'transits'?)"),
    (("origin:\n", "orign:\n"), "orign", "did you mean 'origin'?"),
    (("{name: ispa, asn: 64520,", "{name: ispa, asn: 64520, client: 3,"), "eyeballs[0].client",
     "did you mean 'clients'?"),
    (("{name: ispa, asn: 64520,", "{name: ispa, asn: 64520, colour: red,"), "eyeballs[0].colour",
     "unknown field 'colour' (known: "),
    (("{name: ispa, asn: 64520,", "{name: ispa, asn: ten,"), "eyeballs[0].asn", "must be a whole number, not 'ten'"),
    (("clients: 2}", "clients: 0}"), "eyeballs[0].clients", "must be at least 1, not 0"),
    (("clients: 2}", "clients: yes}"), "eyeballs[0].clients", "must be a whole number"),
    (("name: t\n", "name: t\nbgp: {profile: quick}\n"), "bgp.profile",
     "must be 'default', 'fast' or 'internet', not 'quick'"),
    (("name: t\n", "name: t\nbgp: {multipath: maybe}\n"), "bgp.multipath", "must be true or false, not 'maybe'"),
    (("name: t\n", "name: t\nbgp: fast\n"), "bgp", "must be a mapping (key: value), not 'fast'"),
    (("name: t\n", "name: t\nhostnames: []\n"), "hostnames", "needs at least 1 item"),
    (("name: t\n", "name: t\nanycast: banana\n"), "anycast", "must be an IPv4 address like 198.51.100.10/32"),
    (("{name: ispa, asn: 64520,", "{name: ispa, asn: 64520, prefix: 300.1.0.0/20,"), "eyeballs[0].prefix",
     "must be an IPv4 prefix"),
    (("    upstreams: [ta]\n", "    upstreams: ta\n"), "pops[0].upstreams", "must be a list, not 'ta'"),
])
def test_errors_are_worded_for_people(tmp_path: Path, change: tuple[str, str], field: str, words: str) -> None:
    assert change[0] in GOOD
    err = error_for(tmp_path, GOOD.replace(change[0], change[1], 1))
    assert err.field == field and words in err.message, err.message
    assert "Input should" not in err.message and "Field required" not in err.message
    assert err.line is not None


def test_a_drill_typo_suggests_the_field(tmp_path: Path) -> None:
    from anycastlab.drills.model import DrillFileError, load_drill

    path = tmp_path / "d.yaml"
    path.write_text("name: d\nstpes:\n  - fail: {pop: a, mode: crash}\n")
    with pytest.raises(DrillFileError) as info:
        load_drill(path)
    assert str(info.value) == f"{path}:2: stpes: unknown field 'stpes' (did you mean 'steps'?)"
    path.write_text("name: d\nsteps:\n  - fail: {pop: a, mode: crash, wiat: 1s}\n")
    with pytest.raises(DrillFileError) as info:
        load_drill(path)
    assert "steps[0].fail.wiat: unknown field 'wiat'" in str(info.value)
