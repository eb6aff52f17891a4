"""Shared fixtures: registries, sample files, a throwaway Dagster instance and data root."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import dagster as dg
import pytest

from segpair.registry import VirusSpec, load_registry, parse_registry

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# A toy virus with short proteins, so nucleotide records can be built codon by codon.
TOY_REGISTRY = """
[toy]
display_name = "Toy segmented virus"
[toy.simulation]
lineages = [{ name = "a", labels = { A = "1" }, host = "Human", share = 1.0 }]
subtype_segments = ["A"]
[[toy.segments]]
name = "A"
number = "1"
proteins = [{ name = "PA1", expected_length = 8, primary = true, product_patterns = ['\\bpa1\\b'] }]
[[toy.segments]]
name = "S"
number = "2"
ambisense = true
proteins = [
  { name = "NSX", expected_length = 40, primary = true, product_patterns = ['\\bnsx\\b'] },
  { name = "NX", expected_length = 30, primary = true, product_patterns = ['\\bnx\\b'] },
]
"""


def pytest_configure(config):
    """Give the tests the signal handling a terminal gives them. A shell that starts
    `make test &` (a CI script, nohup) starts it with SIGINT ignored; every process the
    tests start inherits that, and Dagster's in-process runs map SIGTERM to SIGINT's
    handler, so SIGTERM is ignored too from then on: a multiprocessing pool's terminate
    then waits forever, and `dagster dev` survives its Ctrl-C."""
    if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
    if signal.getsignal(signal.SIGTERM) == signal.SIG_IGN:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


# tryfirst: pytest-xdist reads the xdist_group marks in its own collection hook, so the
# marks must be on the items before it runs.
@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`make test`), the tests that share the session's trained main-job
    partition run on one worker, so it is built once; so do the tests of one end-to-end
    module (they share its running processes)."""
    for item in items:
        if "trained" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.xdist_group("trained"))
        elif "/e2e/" in item.nodeid.replace("\\", "/"):
            item.add_marker(pytest.mark.xdist_group(item.nodeid.split("::")[0]))


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_node_collection_finished(node, ids):
    """Stop at once where `--dist loadgroup` would silently ignore the groups (pytest 9.2
    with pytest-xdist 3.8: pytest-dev/pytest-xdist#1386), rather than build the trained
    partition on every worker and run an end-to-end module's tests apart. Every
    end-to-end test is in a group, so its id must carry the group suffix."""
    if getattr(node.config.option, "dist", "") != "loadgroup":
        return
    lost = [nodeid for nodeid in ids if "/e2e/" in nodeid and "@" not in nodeid]
    if lost:
        pytest.exit(
            f"--dist loadgroup did not group {len(lost)} tests (e.g. {lost[0]}): this "
            f"pytest ({pytest.__version__}) and pytest-xdist do not work together "
            "(pytest-dev/pytest-xdist#1386); install pyproject.toml's pins: "
            "pip install -e '.[dev]'",
            returncode=4,
        )


@pytest.fixture(scope="session")
def registry():
    return load_registry()


@pytest.fixture(scope="session")
def flu(registry) -> VirusSpec:
    return registry.get("flu_a")


@pytest.fixture(scope="session")
def bunya(registry) -> VirusSpec:
    return registry.get("bunya")


@pytest.fixture(scope="session")
def toy() -> VirusSpec:
    return parse_registry(TOY_REGISTRY).get("toy")


@pytest.fixture
def fixture_copy(tmp_path):
    """Copy a fixture folder into tmp_path (tests may edit it) and return the copy."""

    def _copy(name: str) -> Path:
        dest = tmp_path / name
        shutil.copytree(FIXTURES / name, dest)
        return dest

    return _copy


@pytest.fixture
def dagster_instance(tmp_path):
    home = tmp_path / "dagster_home"
    home.mkdir()
    with dg.instance_for_test(temp_dir=str(home)) as instance:
        yield instance


@pytest.fixture
def data_root(tmp_path) -> Path:
    root = tmp_path / "data"
    (root / "raw").mkdir(parents=True)
    return root


def require_shared_data(*parts: str) -> Path:
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(
            f"real data not found at {path}: the NCBI sets live in ../shared/data beside the "
            "repository (CI has them); this test reads them in place"
        )
    return path


@pytest.fixture(scope="session")
def trained(tmp_path_factory):
    """The flu demo partition through the main job (30% metadata-matched hard negatives),
    shared by the pairs, training, scoring and MLflow tests; then the classifier retrained with a
    second config (HA-NA only): (data_root, first result, second result, definitions).
    The first run's kmer_aa3 model is kept as data_root/main_job_model_kmer_aa3.pt."""
    from segpair.training.model_history import ModelHistory
    from segpair_assets.definitions import build_definitions
    from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key

    tmp = tmp_path_factory.mktemp("training")
    (tmp / "home").mkdir()
    data_root = tmp / "data"
    with dg.instance_for_test(temp_dir=str(tmp / "home")) as instance:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["simulated_v1"])
        defs = build_definitions(str(data_root))
        key = partition_key("flu_a", "simulated_v1")
        hard = {"ops": {"segment_pairs": {"config": {"hard_negative_share": 0.3}}}}
        first = defs.resolve_job_def("segpair_main_job").execute_in_process(
            instance=instance, partition_key=key, run_config=hard
        )
        # the main job's model, at a fixed path (the second config below becomes the latest)
        model_dir = data_root / "models" / "flu_a" / "simulated_v1" / "kmer_aa3"
        shutil.copy(ModelHistory(model_dir).checkpoint(), data_root / "main_job_model_kmer_aa3.pt")
        config = {"hidden": [32], "slot_transform": "l2", "interactions": ["diff", "prod"],
                  "schema_pairs": [["HA", "NA"]], "steps": 200}  # fmt: skip
        second = defs.resolve_job_def("segpair_main_job").execute_in_process(
            instance=instance,
            partition_key=key,
            asset_selection=[dg.AssetKey("pair_classifier_kmer_aa3")],
            run_config={"ops": {"pair_classifier_kmer_aa3": {"config": config}}},
        )
        yield data_root, first, second, defs
