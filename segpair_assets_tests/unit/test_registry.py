"""The virus registry: a virus without a simulation section (real data only), and a
malformed registry refused in one line naming the file, the virus and the field."""

from __future__ import annotations

import pytest

from segpair.errors import InputDataError
from segpair.registry import DEFAULT_REGISTRY_PATH, RegistryError, load_registry, parse_registry
from segpair.simulator import SimulationConfig, ensure_demo_data_version, simulate_population
from segpair_assets_tests.real_only_virus import ROTA_PROTEINS, ROTA_REGISTRY


def test_a_virus_without_simulation_is_one_registry_entry():
    rota = parse_registry(ROTA_REGISTRY).get("rota")
    assert rota.simulation is None and rota.demo_data_version is None
    assert rota.segment_names == [str(n) for n, _, _ in ROTA_PROTEINS]
    assert rota.protein_names() == [p for _, p, _ in ROTA_PROTEINS]
    assert rota.match_product("QRV00101.1 Rotavirus A strain RVA/Test/1 segment 7 (NSP3)") == (
        "7",
        "NSP3",
    )


def test_the_default_registry_loads_and_keeps_its_demos():
    registry = load_registry()
    assert registry.names == ["flu_a", "bunya"]
    for virus in registry.viruses.values():
        assert virus.simulation is not None and virus.demo_data_version == "simulated_v1"


def test_no_simulation_means_no_demo_and_nothing_to_simulate(tmp_path):
    rota = parse_registry(ROTA_REGISTRY).get("rota")
    assert not ensure_demo_data_version(tmp_path / "simulated_v1", rota, "simulated_v1")
    assert not (tmp_path / "simulated_v1").exists()
    with pytest.raises(InputDataError, match=r"virus 'rota': has no \[rota.simulation\]"):
        simulate_population(rota, SimulationConfig(n_isolates=5))


def test_demo_data_version_without_simulation_is_refused(tmp_path):
    text = ROTA_REGISTRY.replace('display_name = "Rotavirus A"\n', 'display_name = "R"\n'
                                 'demo_data_version = "simulated_v1"\n')  # fmt: skip
    with pytest.raises(RegistryError, match="demo_data_version.*no simulation section"):
        parse_registry(text, source="reg.toml")


def _first_segment_without_proteins(text: str) -> str:
    start = text.index("proteins = [", text.index('name = "3"'))
    end = text.index("\n", start)
    return text[:start] + text[end + 1 :]


# (how the rota entry is broken, what the message names besides file and virus)
MALFORMED = {
    "missing segments": (
        lambda t: t.split("[[rota.segments]]")[0],
        ["`segments`", "missing"],
    ),
    "a segment without proteins": (
        _first_segment_without_proteins,
        ["`segments[2].proteins`", "segment '3'", "missing"],
    ),
    "toml syntax error": (
        lambda t: t.replace('display_name = "Rotavirus A"', 'display_name = "Rotavirus A'),
        ["not valid TOML", "line 2", "display_name"],
    ),
    "typo key": (
        lambda t: t.replace("organism_patterns", "organism_paterns"),
        ["`organism_paterns`", "unknown field", "organism_patterns", "segments"],
    ),
    "typo table": (
        lambda t: t.replace("[[rota.segments]]", "[[rota.segmnts]]"),
        ["`segmnts`", "unknown field", "`segments`", "missing"],
    ),
    "negative length": (
        lambda t: t.replace("expected_length = 880", "expected_length = -880"),
        ["`segments[1].proteins[0].expected_length`", "segment '2'", "greater than 0", "-880"],
    ),
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_a_malformed_registry_is_one_line_naming_file_virus_and_field(tmp_path, case):
    breakit, expected = MALFORMED[case]
    path = tmp_path / "my_viruses.toml"
    path.write_text(breakit(ROTA_REGISTRY))
    with pytest.raises(RegistryError) as info:
        load_registry(path)
    message = str(info.value)
    assert isinstance(info.value, InputDataError)
    assert "\n" not in message and "Traceback" not in message
    assert str(path) in message and "virus 'rota'" in message, message
    for words in expected:
        assert words in message, f"{words!r} not in {message!r}"
    assert str(DEFAULT_REGISTRY_PATH) in message  # the documented example


def test_a_missing_registry_file_is_named(tmp_path):
    with pytest.raises(RegistryError, match="no_such.toml.*SEGPAIR_VIRUS_REGISTRY"):
        load_registry(tmp_path / "no_such.toml")
