"""A data version is a plain name: it becomes a folder under raw/, processed/, embeddings/,
models/ and a Dagster partition, so a path in its place would read and write elsewhere."""

from __future__ import annotations

import pytest

from segpair.data_versions import check_data_version_name
from segpair.errors import InputDataError


@pytest.mark.parametrize("name", ["brc_2025", "simulated_v1", "v1.2-rc", "2024", "A"])
def test_plain_names_pass(name):
    assert check_data_version_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["../x", "..", ".", "/tmp/abs", "a/b", "a\\b", "", " v1", "v1 ", "x|y", ".hidden", "-v",
     "_v", "brc 2025", "v1\n"],
)  # fmt: skip
def test_paths_and_odd_names_are_refused_with_the_rule_and_the_fix(name):
    with pytest.raises(InputDataError) as err:
        check_data_version_name(name)
    message = str(err.value)
    assert repr(name) in message
    assert "letters, digits" in message and "Fix:" in message
    assert "\n" not in message.replace(repr(name), "")
