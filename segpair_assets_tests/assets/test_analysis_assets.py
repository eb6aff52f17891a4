"""Maps of the embedding space and segment conservation through Dagster: a small simulated
partition (metadata, files, MLflow), protein-only input, the demo's main job, and the
real influenza set (real_data)."""

from __future__ import annotations

import dagster as dg
import mlflow
import pandas as pd
import pytest

from segpair.embeddings.catalog import CATALOG
from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets.assets.analysis import build_map_assets, segment_conservation
from segpair_assets.assets.embeddings import build_embedding_assets
from segpair_assets.assets.preprocessing import protein_final
from segpair_assets.definitions import build_definitions
from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_key
from segpair_assets_tests.conftest import REPO_ROOT, require_shared_data

ASSETS = [protein_final, *build_embedding_assets(CATALOG), *build_map_assets(CATALOG),
          segment_conservation]  # fmt: skip


def _materialize(instance, data_root, version, names, virus="flu_a", run_config=None):
    instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, [version])
    defs = build_definitions(str(data_root))
    result = dg.materialize(
        ASSETS,
        instance=instance,
        resources=defs.resources,
        partition_key=partition_key(virus, version),
        selection=dg.AssetSelection.assets(*names),
        run_config=run_config,
    )
    return result, defs


def _md(result, node: str) -> dict:
    (mat,) = result.asset_materializations_for_node(node)
    return {k: v.value for k, v in mat.metadata.items()}


def _rows(table) -> list[dict]:
    return [r.data for r in table.records]


def test_maps_and_conservation_of_a_small_partition(dagster_instance, data_root, flu):
    config = SimulationConfig(n_isolates=40, seed=3)
    folder = data_root / "raw" / "flu_a" / "small"
    write_data_version(simulate_population(flu, config), folder, flu, config)
    names = ["protein_final", "master_embeddings_kmer_aa3", "embedding_map_kmer_aa3",
             "segment_conservation"]  # fmt: skip
    result, defs = _materialize(dagster_instance, data_root, "small", names)
    md = _md(result, "embedding_map_kmer_aa3")
    assert md["mapped"] is True and md["focus_function"] in {"HA", "NA"}
    assert md["proteins_mapped"] == _md(result, "protein_final")["dagster/row_count"]
    assert md["pca_function_nn_purity"] > 0.95 and md["umap_function_nn_purity"] > 0.8
    for plot in ("map_by_function.png", "map_by_subtype.png", "map_by_host.png",
                 f"map_{md['focus_function']}_by_subtype.png"):  # fmt: skip
        assert f"get-artifact?path={plot}&run_uuid={md['mlflow_run_id']}" in md["maps"]
    coords = pd.read_parquet(md["coordinates"])
    assert {"view", "brc_fea_id", "function", "subtype", "pca_x", "umap_y"} <= set(coords)
    assert {r["view"] for r in _rows(md["views"])} == {"all", md["focus_function"]}

    cons = _md(result, "segment_conservation")
    table = pd.DataFrame(_rows(cons["conservation"])).set_index("function")
    assert list(table.index) == ["PB2", "PB1", "PA", "HA", "NP", "NA", "M1", "NS1"]
    assert table.loc["PB1", "identity_median"] > table.loc["HA", "identity_median"]
    assert cons["least_conserved"].startswith(("HA", "NA"))
    assert "path=conservation.png" in cons["conservation_plot"]
    assert "NA" in set(pd.read_parquet(cons["table_path"])["function"])  # a name, not missing

    mlflow.set_tracking_uri(defs.resources["mlflow_tracking"].tracking_uri)
    client = mlflow.MlflowClient()
    run = client.get_run(md["mlflow_run_id"])
    assert run.info.run_name == "kmer_aa3 map flu_a/small"
    assert mlflow.get_experiment(run.info.experiment_id).name == "segpair-flu_a-diagnostics"
    logged = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {"map_by_function.png", "map_coordinates.parquet"} <= logged
    assert run.data.metrics["umap_all_nn_purity"] == pytest.approx(
        md["umap_function_nn_purity"], abs=1e-3
    )
    conservation_run = client.get_run(cons["mlflow_run_id"])
    assert {"conservation.csv", "conservation.png", "pairwise_identity.parquet"} <= {
        a.path for a in client.list_artifacts(conservation_run.info.run_id)
    }

    # every metadata key is explained in the README
    readme = (REPO_ROOT / "README.md").read_text()
    for keys in (md, cons):
        missing = [k for k in keys if f"`{k}`" not in readme]
        assert not missing, f"README does not explain {missing}"


def test_protein_only_input_has_no_nucleotide_map_and_says_why(dagster_instance, data_root):
    """A table of proteins (no coding DNA): the 6-mer map records why there is none, the
    run goes on, and conservation counts no coding sequences."""
    folder = data_root / "raw" / "flu_a" / "proteins_only"
    folder.mkdir(parents=True)
    table = pd.read_csv(REPO_ROOT / "segpair_assets_tests" / "fixtures" / "table" / "proteins.csv")
    table.to_csv(folder / "proteins.csv", index=False)
    names = ["protein_final", "master_embeddings_kmer_nt6", "embedding_map_kmer_nt6",
             "segment_conservation"]  # fmt: skip
    result, _defs = _materialize(dagster_instance, data_root, "proteins_only", names)
    md = _md(result, "embedding_map_kmer_nt6")
    assert md["mapped"] is False and "need nt_seq" in md["why"]
    cons = pd.DataFrame(_rows(_md(result, "segment_conservation")["conservation"]))
    assert cons["distinct_cds_per_100_isolates"].isna().all()


def test_the_main_job_maps_every_weight_free_embedder_on_the_demo(trained):
    """The session's main-job run of the flu demo (conftest `trained`)."""
    _data_root, first, _second, defs = trained
    main = defs.resolve_job_def("segpair_main_job").asset_layer.selected_asset_keys
    for spec in CATALOG.in_main_job():
        assert dg.AssetKey(spec.map_asset) in main
        md = _md(first, spec.map_asset)
        assert md["mapped"] is True and md["umap_function_nn_purity"] > 0.95
    assert dg.AssetKey("embedding_map_esm2") not in main
    (cons,) = first.asset_materializations_for_node("segment_conservation")
    assert cons.metadata["most_conserved"].value.startswith(("PB1", "M1", "NP"))


@pytest.mark.real_data
def test_real_influenza_maps_keep_functions_apart(dagster_instance, data_root):
    """The NCBI influenza set (6,898 proteins, 2,432 distinct 3-mer vectors): on the
    kmer_aa3 maps each protein's nearest neighbours are its own function. Measured: UMAP
    nearest-neighbour purity 0.9946, PCA 0.9267 (PCA's two axes fold the eight functions
    onto four clumps); thresholds 0.97 and 0.85. Conservation: PB1 most conserved (median
    identity 0.972), NA and HA least (0.448 and 0.463: two modes, same or other subtype,
    so 100 sampled pairs rank them either way)."""
    src = require_shared_data("influenza_a")
    folder = data_root / "raw" / "flu_a" / "ncbi"
    folder.mkdir(parents=True)
    (folder / "manifest.toml").write_text(
        'format = "fasta"\norigin = "real"\ndescription = "NCBI influenza, read in place"\n'
        f'[fasta]\nfiles = ["{src / "influenza_a_2010s.fasta.gz"}"]\n'
        f'metadata_table = "{src / "influenza_a_2010s.genomes.tsv"}"\n'
        'accession_column = "accession"\nisolate_column = "genome_id"\n'
    )
    names = ["protein_final", "master_embeddings_kmer_aa3", "embedding_map_kmer_aa3",
             "segment_conservation"]  # fmt: skip
    result, _defs = _materialize(dagster_instance, data_root, "ncbi", names)
    md = _md(result, "embedding_map_kmer_aa3")
    assert md["proteins_mapped"] == 6898 and md["focus_function"] == "HA"
    assert md["umap_function_nn_purity"] >= 0.97
    assert md["pca_function_nn_purity"] >= 0.85
    cons = _md(result, "segment_conservation")
    assert cons["most_conserved"].startswith("PB1")
    assert cons["least_conserved"].startswith(("HA", "NA"))
