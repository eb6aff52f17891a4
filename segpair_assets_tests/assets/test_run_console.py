"""`segpair materialize` on workers (SEGPAIR_EXECUTOR=celery) runs `dg.execute_job` on a
job rebuilt by name in other processes; its console and failure summary must be as short
as the in-process path's. Here the multiprocess executor stands in for the workers: the
same rebuilt job, the same run config, steps in other processes."""

from __future__ import annotations

import dagster as dg

from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME, partition_tags
from segpair_assets.run_console import CONSOLE_RUN_CONFIG, failure_lines
from segpair_assets_tests.conftest import FIXTURES


def test_a_job_rebuilt_by_name_prints_one_line_per_event_and_reports_the_error(
    tmp_path, dagster_instance, monkeypatch, capfd
):
    folder = tmp_path / "data/raw/flu_a/no_isolate"
    folder.mkdir(parents=True)
    fasta = (FIXTURES / "ncbi_protein_fasta/proteins.fasta").read_text()
    (folder / "proteins.fasta").write_text(fasta + ">XX000001 hypothetical protein\nMKTIIAL\n")
    monkeypatch.setenv("SEGPAIR_DATA_ROOT", str(tmp_path / "data"))  # for the step processes
    dagster_instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, ["no_isolate"])
    job = dg.build_reconstructable_job(
        "segpair_assets.run_console", "console_job", reconstructable_args=("segpair_main_job",)
    )
    result = dg.execute_job(
        job,
        instance=dagster_instance,
        run_config=CONSOLE_RUN_CONFIG,
        tags=partition_tags("flu_a", "no_isolate"),
        asset_selection=[dg.AssetKey("protein_final")],
    )
    assert not result.success
    lines = failure_lines(result)
    assert len(lines) == 1 and lines[0].startswith("protein_final failed: proteins.fasta:"), lines
    assert "XX000001" in lines[0] and "Fix:" in lines[0]
    console = capfd.readouterr()
    printed = console.out + console.err
    assert "Stack Trace" not in printed and "Traceback" not in printed, printed
    assert "protein_final: Execution failed." in printed
