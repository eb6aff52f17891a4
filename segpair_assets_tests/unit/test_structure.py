"""The structure newcomers rely on: one embedder catalog, config defaults from the core,
training on the compute device, thin asset and resource modules."""

from __future__ import annotations

import ast
import dataclasses
from pathlib import Path

import numpy as np
import pytest
import torch

from segpair.embeddings.catalog import CATALOG
from segpair_assets_tests.conftest import REPO_ROOT


def test_catalog_names_and_weights():
    assert CATALOG.default == "kmer_aa3"
    assert [s.name for s in CATALOG.weight_free()] == ["kmer_aa3", "kmer_nt6", "kmer_nt6_aa3"]
    assert [s.name for s in CATALOG.in_main_job()] == ["kmer_aa3", "kmer_nt6"]
    esm = CATALOG.get("esm2")
    assert esm.needs_weights and esm.model_env_var == "SEGPAIR_ESM2_MODEL"
    assert esm.build(model="/weights/esm").model_id == "/weights/esm"
    assert CATALOG.get("kmer_nt6").build().dim == 4096
    with pytest.raises(KeyError, match="unknown embedder 'esm3'"):
        CATALOG.get("esm3")


def test_settings_come_from_one_place():
    from segpair_assets.settings import Settings

    s = Settings.from_environment(
        {"SEGPAIR_DATA_ROOT": "/d", "SEGPAIR_ESM2_MODEL": "/w/esm2",
         "SEGPAIR_EXECUTOR": " Celery ", "SEGPAIR_SENSOR_INTERVAL_SECONDS": "5",
         "SEGPAIR_EAGER_AUTOMATION": "yes"}
    )  # fmt: skip
    assert (s.data_root, s.executor, s.sensor_interval_seconds) == ("/d", "celery", 5)
    assert s.eager_automation and dict(s.models) == {"esm2": "/w/esm2"}
    assert Settings.from_environment({}).models == {}
    # Only settings.py reads SEGPAIR_* variables.
    readers = [
        str(p.relative_to(REPO_ROOT))
        for pkg in ("segpair", "segpair_assets", "resources")
        for p in (REPO_ROOT / pkg).rglob("*.py")
        if "os.environ" in p.read_text() or "os.getenv" in p.read_text()
    ]
    assert readers == ["segpair_assets/settings.py"]


def _defaults(cls) -> dict:
    if dataclasses.is_dataclass(cls):
        return {f.name: f.default_factory() if f.default_factory is not dataclasses.MISSING
                else f.default for f in dataclasses.fields(cls)}  # fmt: skip
    return {name: f.get_default(call_default_factory=True) for name, f in cls.model_fields.items()}


@pytest.mark.parametrize(
    "dagster_config, core_config, dagster_only",
    [
        ("segpair_assets.assets.pairs:SegmentPairsConfig",
         "segpair.pairs.segment_pairs:PairConfig", {"seed"}),
        ("segpair_assets.assets.preprocessing:ProteinFinalConfig",
         "segpair.cleaning:CleaningConfig", {"min_orf_fraction"}),
        ("segpair_assets.assets.training:PairClassifierConfig",
         "segpair.training.train:TrainConfig",
         {"schema_pairs", "memory_budget_gb", "baseline_max_train_pairs", "seed"}),
        ("segpair_assets.assets.vectors:VectorTableConfig",
         "segpair.vectors.table:VectorTableSettings", set()),
        ("segpair_assets.assets.analysis:EmbeddingMapConfig",
         "segpair.analysis.maps:MapConfig", {"seed"}),
        ("segpair_assets.assets.analysis:SegmentConservationConfig",
         "segpair.analysis.conservation:ConservationConfig", {"seed"}),
    ],
)  # fmt: skip
def test_launchpad_defaults_equal_the_core_defaults(dagster_config, core_config, dagster_only):
    """Except `seed`: unset on the launchpad, where the master seed decides (provenance)."""
    import importlib

    def load(ref):
        module, name = ref.split(":")
        return getattr(importlib.import_module(module), name)

    launchpad, core = _defaults(load(dagster_config)), _defaults(load(core_config))
    shared = set(launchpad) - dagster_only
    assert shared <= set(core), f"launchpad options the core lacks: {shared - set(core)}"
    for name in shared:
        want = core[name]
        got = launchpad[name]
        assert (list(got) if isinstance(got, list | tuple) else got) == (
            list(want) if isinstance(want, list | tuple) else want
        ), name


def test_training_moves_the_model_and_every_batch_to_the_chosen_device(monkeypatch):
    """`TrainConfig.device` (the compute_device resource's device) reaches the model and
    the batches. Recorded with a device name torch on this machine cannot run."""
    from segpair.training import train as train_module
    from segpair.training.train import TrainConfig, train_pair_classifier

    seen: list[str] = []
    real_as_tensor, real_to = torch.as_tensor, torch.nn.Module.to

    def as_tensor(data, dtype=None, device=None):
        seen.append(str(device))
        return real_as_tensor(data, dtype=dtype)  # stays on the CPU to compute

    def module_to(self, *args, **kwargs):
        seen.append(f"model:{args[0] if args else kwargs.get('device')}")
        return real_to(self, "cpu")

    monkeypatch.setattr(train_module.torch, "as_tensor", as_tensor)
    # the model reports the device it was moved to (it stays on the CPU to compute)
    monkeypatch.setattr(train_module, "_device_of", lambda model: "cuda:7")
    monkeypatch.setattr(torch.nn.Module, "to", module_to)
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(64, 8)).astype(np.float32), rng.normal(size=(64, 8))
    y = (rng.random(64) < 0.5).astype(np.float32)
    config = TrainConfig(
        model="interaction_mlp", hidden=[8], steps=8, eval_every=4, batch_size=16, device="cuda:7"
    )
    train_pair_classifier((a, b.astype(np.float32), y), (a, b.astype(np.float32), y), config)
    assert "model:cuda:7" in seen
    batches = [d for d in seen if not d.startswith("model:")]
    assert batches and set(batches) == {"cuda:7"}


def test_the_asset_trains_on_the_compute_device_resource():
    from resources.embedders import ComputeDevice
    from segpair_assets.assets.training import PairClassifierConfig, train_config

    assert ComputeDevice(device="cpu").torch_device() == "cpu"
    assert train_config(PairClassifierConfig(), "cuda:1", 7).device == "cuda:1"


# ----------------------------------------------------------------- thin wiring


def _functions(path: Path):
    tree = ast.parse(path.read_text())
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _sources(*packages: str) -> list[Path]:
    return [p for pkg in packages for p in sorted((REPO_ROOT / pkg).rglob("*.py"))]


def test_no_long_functions_in_assets_and_resources():
    long = [
        f"{p.relative_to(REPO_ROOT)}:{fn.lineno} {fn.name} ({fn.end_lineno - fn.lineno + 1})"
        for p in _sources("segpair_assets", "resources")
        for fn in _functions(p)
        if fn.end_lineno - fn.lineno + 1 > 60
    ]
    assert not long, "functions over 60 lines:\n" + "\n".join(long)


def test_assets_reach_resources_as_typed_parameters_and_never_import_mlflow():
    offenders = []
    for p in _sources("segpair_assets"):
        text = p.read_text()
        if "getattr(context.resources" in text:
            offenders.append(f"{p.name}: getattr(context.resources, ...)")
        tree = ast.parse(text)
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            if any(n == "mlflow" or n.startswith("mlflow.") for n in names):
                offenders.append(f"{p.name}: imports mlflow")
    assert not offenders, offenders
