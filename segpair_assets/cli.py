"""`segpair`: the command line.

segpair demo                     simulate (if absent) and materialize every asset of the
                                 demo data version of each virus into $DAGSTER_HOME,
                                 launched through a temporary `dagster dev` so the UI
                                 shows the runs under their job (a virus without a
                                 simulation preset is skipped)
segpair materialize -v V -d D    register data version D and materialize every asset of
                                 virus V x D (the same job the UI launches), in this
                                 process; -c run.yaml: a run config (the launchpad's);
                                 --webserver URL: launched through `make ui`'s webserver
segpair simulate -v V -o DIR     write a SIMULATED data version folder
segpair score -m model.pt -i IN  score protein pairs with a trained model: every
                                 cross-segment pair inside each isolate of IN, or the
                                 pairs listed with --pairs; writes a table of scores
segpair evaluate -m model.pt -i IN
                                 build labelled pairs from IN (other genomes) by the
                                 training rules; AUC of the model and its baselines
segpair neighbours -v V -d D --protein ID | --fasta FILE
                                 the nearest proteins in V x D's vector table (-e
                                 embedder, -k 10), with isolates; --partner NA
segpair export -v V -d D -e E    write the E embeddings of V x D for other tools
                                 (--format pt|parquet|npz), from the cache
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from segpair.simulator import SimulationConfig, simulate_population, write_data_version
from segpair_assets.export_command import add_export_command, run_export
from segpair_assets.models_command import add_models_command, run_models
from segpair_assets.neighbours_command import add_neighbours_command, run_neighbours
from segpair_assets.settings import Settings


def _materialize(
    pairs: list[tuple[str, str]],
    job_name: str = "segpair_main_job",
    assets: list[str] | None = None,
    config_file: Path | None = None,
    webserver: str | None = None,
) -> int:
    """Run the job on each virus x version: in this process, or launched through a
    webserver (`webserver`: its URL, or "start" for a temporary `dagster dev`)."""
    from contextlib import nullcontext

    import dagster as dg

    from segpair.data_versions import check_data_version_name
    from segpair.errors import InputDataError
    from segpair_assets.launch import LaunchError, TemporaryWebserver
    from segpair_assets.run_config_file import RunConfigFileError

    try:  # before anything is written or registered: a path here reads and writes elsewhere
        versions = sorted({check_data_version_name(v) for _, v in pairs})
    except InputDataError as err:
        return _error(err)
    home = Settings.from_environment().dagster_home
    if not home:
        print("DAGSTER_HOME is not set: set it to a folder so runs are kept (make demo does).")
        return 2
    try:  # a temporary dagster dev loads while the job and its configs are prepared here
        with TemporaryWebserver(home) if webserver == "start" else nullcontext() as server:
            try:
                configs = _run_configs(pairs, job_name, config_file)
            except (InputDataError, RunConfigFileError, ValueError) as err:
                return _error(err)
            instance = dg.DagsterInstance.get()
            _register_versions(instance, versions)
            if webserver is None:
                return _run_all_here(instance, job_name, pairs, configs, assets)
            url = server.url if server is not None else webserver
            return _launch_all(instance, url, job_name, pairs, configs, assets, server)
    except LaunchError as err:
        return _error(err)


def _error(err: Exception) -> int:
    for line in str(err).splitlines():  # a config file's errors: one line each
        print(f"error: {line}", file=sys.stderr)
    return 2


def _run_all_here(instance, job_name: str, pairs, configs, assets) -> int:
    import dagster as dg

    selection = [dg.AssetKey(a) for a in assets] if assets else None
    failed = 0
    for (virus, version), config in zip(pairs, configs, strict=True):
        print(f"materializing {virus} x {version} ...", flush=True)
        result = _run_partition(instance, job_name, virus, version, selection, config)
        failed += not _report(result.success, result.run_id, virus, version, result.all_events)
    return 1 if failed else 0


def _run_configs(pairs, job_name: str, config_file: Path | None) -> list[dict]:
    """Each run's config: the file's, checked against the job, or the job's own for the
    partition (a virus job's preset; a virus job refuses another virus's partition)."""
    from segpair_assets.partitions import partition_key
    from segpair_assets.run_config_file import check_run_config, read_run_config
    from segpair_assets.run_console import console_job

    job = console_job(job_name)
    if config_file is not None:
        config = read_run_config(config_file)
        check_run_config(config_file, job, config)
    return [
        config if config_file is not None
        else dict(job.get_run_config_for_partition_key(str(partition_key(virus, version))))
        for virus, version in pairs
    ]  # fmt: skip


def _register_versions(instance, versions: list[str]) -> None:
    from segpair_assets.partitions import DATA_VERSION_PARTITIONS_NAME

    known = set(instance.get_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME))
    new = [v for v in versions if v not in known]
    if new:
        instance.add_dynamic_partitions(DATA_VERSION_PARTITIONS_NAME, new)


def _run_partition(instance, job_name: str, virus: str, version: str, selection, config):
    """One run of the job on virus x version, printing one line per step event (the run's
    log keeps the stack traces)."""
    import dagster as dg

    from segpair_assets.partitions import partition_key, partition_tags
    from segpair_assets.run_console import CONSOLE_RUN_CONFIG, console_job

    job = console_job(job_name)
    # the one-line console, unless the config sets the console logger itself (a launchpad's)
    run_config = {
        **config,
        "loggers": {**CONSOLE_RUN_CONFIG["loggers"], **config.get("loggers", {})},
    }
    if job.executor_def.name not in (dg.multiprocess_executor.name, dg.in_process_executor.name):
        # the configured engine (SEGPAIR_EXECUTOR=celery) runs the steps
        return dg.execute_job(
            dg.build_reconstructable_job(
                "segpair_assets.run_console", "console_job", reconstructable_args=(job_name,)
            ),
            instance=instance,
            run_config=run_config,
            tags=partition_tags(virus, version),
            asset_selection=selection,
        )
    return job.execute_in_process(  # one process: the quickest way on one machine
        run_config=run_config,
        instance=instance,
        partition_key=partition_key(virus, version),
        raise_on_error=False,
        asset_selection=selection,
    )


def _launch_all(instance, url: str, job_name: str, pairs, configs, assets, server) -> int:
    """Every run launched through the webserver at `url` (as the UI does; runs of
    different partitions go side by side), followed until each ends."""
    import dagster as dg

    from segpair_assets.launch import RunFollower, follow, launch, wait_until_loaded
    from segpair_assets.partitions import partition_tags

    followers, outcomes = {}, []

    def on_end(f: RunFollower) -> None:
        ok = f.run.status == dg.DagsterRunStatus.SUCCESS
        outcomes.append(_report(ok, f.run_id, *followers[f], f.events))

    if server is not None:
        server.wait_until_loaded()
    wait_until_loaded(url, timeout=30)
    for (virus, version), config in zip(pairs, configs, strict=True):
        run_config = _launch_config(config, len(pairs))
        run_id = launch(url, job_name, run_config, partition_tags(virus, version), assets)
        print(f"launched {job_name} on {virus} x {version} (run {run_id})", flush=True)
        prefix = f"[{virus} x {version}] " if len(pairs) > 1 else ""
        followers[RunFollower(instance, run_id, prefix)] = (virus, version)
    follow(list(followers), on_end)
    if server is not None:
        _finish_sensor_runs(instance, server, {f.run_id for f in followers})
    return 0 if all(outcomes) else 1


def _finish_sensor_runs(instance, server, ours: set[str]) -> None:
    """The temporary daemon's data-version sensor may have launched runs for other new
    folders under data/raw; stopping it now would kill them, so they are followed too."""
    from segpair_assets.launch import RunFollower, follow, sensor_runs_in_progress

    others = [r for r in sensor_runs_in_progress(instance, server.started) if r.run_id not in ours]
    for run in others:
        print(f"the data-version sensor launched {run.job_name} on "
              f"{run.tags.get('dagster/partition')} (run {run.run_id}) meanwhile; following it "
              "to its end, as `make ui` would (Ctrl-C stops it)", flush=True)  # fmt: skip
    follow([RunFollower(instance, r.run_id, f"[{r.run_id[:8]}] ") for r in others],
           lambda f: print(f"run {f.run_id}: {f.run.status.value}", flush=True))  # fmt: skip


def _launch_config(config: dict, runs: int) -> dict:
    """The run config a launched run gets: the executor's settings added unless the config
    sets them or another executor runs the steps. Steps fork from a process that has
    imported the code location (spawned, each imports it anew: ~5 s a step), and the runs
    side by side share the cores (one step per core in all, as one run in this process)."""
    if "execution" in config or Settings.from_environment().executor != "multiprocess":
        return config
    execution = {
        "max_concurrent": max(1, (os.cpu_count() or 1) // runs),
        "start_method": {"forkserver": {"preload_modules": ["segpair_assets.definitions"]}},
    }
    return {**config, "execution": {"config": execution}}


def _report(success: bool, run_id: str, virus: str, version: str, events) -> bool:
    """Print the outcome; a failure ends with each failed step's error itself."""
    from segpair_assets.run_console import event_failure_lines

    if success:
        print(f"{virus} x {version}: ok (run {run_id})", flush=True)
        return True
    print(f"{virus} x {version}: FAILED (run {run_id}); the full trace is in the "
          "run's log (Dagster UI, Runs)", flush=True)  # fmt: skip
    for line in event_failure_lines(events):
        print(line, flush=True)
    return False


# Besides segpair's own: a model path or run that is not there, an unknown virus or protein.
_MODEL_INPUT_ERRORS = (FileNotFoundError, KeyError, ValueError)


def _score(args, registry) -> int:
    from tqdm import tqdm

    from segpair.errors import InputDataError
    from segpair.scoring import (
        PairScorer,
        isolate_summary,
        not_scored_summary,
        read_model_proteins,
        read_pair_list,
    )
    from segpair.training.checkpoint import CheckpointMismatchError
    from segpair.training.model_history import resolve_checkpoint

    try:
        scorer = PairScorer.from_checkpoint(
            resolve_checkpoint(args.model, args.run), args.weights, args.device
        )
        virus = registry.get(scorer.virus_name(args.virus))
        proteins, report, reader = read_model_proteins(
            args.input, virus, [registry.get(v) for v in registry.names], args.metadata
        )
        issues = dict(report.issues.counts) or "none"
        print(f"{len(proteins)} proteins of {proteins['assembly_id'].nunique()} isolates "
              f"read by {reader}; cleaning issues: {issues}")  # fmt: skip
        wanted = read_pair_list(args.pairs) if args.pairs else None
        with tqdm(total=None, unit="seq", desc=f"embedding ({scorer.embedder.name})") as bar:

            def progress(done: int, total: int) -> None:
                bar.total = total
                bar.update(done - bar.n)

            scores = scorer.score_proteins(proteins, virus, wanted, str(args.pairs),
                                           not args.all_function_pairs, progress,
                                           str(args.input))  # fmt: skip
    except (InputDataError, CheckpointMismatchError, *_MODEL_INPUT_ERRORS) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    _write_table(scores, args.out)
    n_scored = int(scores["score"].notna().sum())
    n_same = int(scores["same_isolate"].sum())
    print(f"scored {n_scored} of {len(scores)} pairs with threshold {scorer.threshold:.3f}: "
          f"{n_same} called same-isolate, {n_scored - n_same} not; wrote {args.out}")  # fmt: skip
    if not_scored := not_scored_summary(scores):
        print(not_scored)
    summary = isolate_summary(scores, scorer.threshold)
    flagged = summary[summary["n_below_threshold"] > 0]
    if len(flagged):
        print(f"{len(flagged)} isolates have a within-isolate pair below the threshold "
              "(mis-joined records or reassortants?); the weakest:")  # fmt: skip
        print(flagged.head(10).to_string(index=False))
    return 0


def _write_table(df, out: Path) -> None:
    from segpair.atomic import atomic_path

    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(out) as tmp:
        if out.suffix == ".parquet":
            df.to_parquet(tmp, index=False)
        else:
            df.to_csv(tmp, sep="\t" if out.suffix != ".csv" else ",", index=False)


def _evaluate(args, registry) -> int:
    from segpair.errors import InputDataError
    from segpair.evaluation import evaluate_proteins
    from segpair.scoring import PairScorer, read_model_proteins
    from segpair.training.checkpoint import CheckpointMismatchError
    from segpair.training.model_history import resolve_checkpoint

    try:
        scorer = PairScorer.from_checkpoint(
            resolve_checkpoint(args.model, args.run), args.weights, args.device
        )
        virus = registry.get(scorer.virus_name(args.virus))
        proteins, _report, reader = read_model_proteins(
            args.input, virus, [registry.get(v) for v in registry.names], args.metadata
        )
        report = evaluate_proteins(scorer, proteins, virus, args.hard_negative_share, args.seed,
                                   str(args.input))  # fmt: skip
    except (InputDataError, CheckpointMismatchError, *_MODEL_INPUT_ERRORS) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"{len(proteins)} proteins of {proteins['assembly_id'].nunique()} isolates read by "
          f"{reader}; model trained on {scorer.meta.get('virus')} x "
          f"{scorer.meta.get('data_version')}; pairs: {report.counts}")  # fmt: skip
    print(report.metrics[["scorer", "auc_roc", "auc_pr", "f1", "mcc"]].round(4).to_string(
        index=False))  # fmt: skip
    if report.verdict:
        print(report.verdict["summary"])
    if args.out:
        _write_table(report.pairs, args.out)
        print(f"wrote {args.out}")
    return 0


def _model_and_input(p: argparse.ArgumentParser) -> None:
    """The arguments `score` and `evaluate` share: a checkpoint and proteins to read."""
    p.add_argument(
        "-m", "--model", required=True, type=Path,
        help="a model.pt, a run folder, or data/models/{virus}/{version}/{embedder} (its latest "
        "run; `segpair models` lists them)",
    )  # fmt: skip
    p.add_argument("--run", help="with a model folder: this run instead of the latest")
    p.add_argument(
        "-i", "--input", required=True, type=Path,
        help="proteins: a data-version folder, a FASTA file or a table (.tsv/.csv/.parquet)",
    )  # fmt: skip
    p.add_argument("--metadata", type=Path, help="accession -> isolate table for FASTA input")
    p.add_argument("-v", "--virus", help="default: the virus the model was trained on")
    p.add_argument("--weights", help="where the language model's weights are now, if moved")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")


def _webserver_option(parser: argparse.ArgumentParser, text: str) -> None:
    parser.add_argument("--webserver", metavar="URL", help=f"{text}; its runs show in the UI "
                        "under Overview and the job, like the UI's own")  # fmt: skip


def _add_pipeline_commands(sub, registry) -> None:
    from segpair_assets.partitions import virus_job_name

    demo = sub.add_parser("demo", help="materialize everything on the SIMULATED demo data")
    _webserver_option(demo, "launch the runs through the Dagster webserver at URL (`make ui`'s) "
                      "instead of a temporary `dagster dev`")  # fmt: skip
    mat = sub.add_parser("materialize", help="materialize every asset of one partition")
    mat.add_argument("-v", "--virus", required=True, choices=registry.names)
    mat.add_argument("-d", "--data-version", required=True)
    mat.add_argument(
        "--job",
        default="segpair_main_job",
        choices=["segpair_main_job", "segpair_language_model_job", "segpair_opt_in_job"]
        + [virus_job_name(v) for v in registry.names],
        help="segpair_language_model_job builds the ESM-2 / FastESM2 / Nucleotide Transformer "
        "caches (needs their weights: SEGPAIR_ESM2_MODEL etc.); segpair_opt_in_job the "
        "weight-free embedders kept out of the main job (kmer_nt6_aa3); segpair_{virus}_job "
        "runs the main job with the virus's preset, as the data-version sensor does",
    )
    mat.add_argument(
        "--assets", nargs="+", metavar="ASSET", help="only these assets of the job (and checks)"
    )
    mat.add_argument(
        "-c", "--config", type=Path, metavar="FILE",
        help="the run config (YAML or JSON), e.g. saved from the job's launchpad: applied as "
        "is, in place of the job's own (a virus job's preset)",
    )  # fmt: skip
    _webserver_option(mat, "launch the run through the Dagster webserver at URL (`make ui`'s: "
                      "http://127.0.0.1:3000) instead of running it in this process")  # fmt: skip
    sim = sub.add_parser("simulate", help="write a SIMULATED data version folder")
    sim.add_argument("-v", "--virus", required=True, choices=registry.names)
    sim.add_argument("-o", "--out", required=True, type=Path)
    sim.add_argument("-n", "--isolates", type=int, default=SimulationConfig.n_isolates)
    sim.add_argument("--seed", type=int, default=SimulationConfig.seed)


def _add_model_commands(sub) -> None:
    score = sub.add_parser(
        "score", help="score protein pairs with a trained model (model.pt of a pair_classifier)"
    )
    _model_and_input(score)
    score.add_argument("-o", "--out", required=True, type=Path, help="scores (.tsv or .parquet)")
    score.add_argument("--pairs", type=Path, help="score only these pairs (columns brc_a, brc_b)")
    score.add_argument(
        "--all-function-pairs", action="store_true",
        help="also score function pairs the model was not trained on (marked as such)",
    )  # fmt: skip
    ev = sub.add_parser(
        "evaluate", help="evaluate a trained model and its baselines on labelled pairs built "
        "from other genomes (another data version)",
    )  # fmt: skip
    _model_and_input(ev)
    ev.add_argument("-o", "--out", type=Path, help="the scored pairs (.tsv or .parquet)")
    ev.add_argument(
        "--hard-negative-share", type=float, default=0.5,
        help="share of negatives from isolates alike in subtype, host and year",
    )  # fmt: skip
    ev.add_argument("--seed", type=int, default=42)


def _no_simulation(virus: str) -> str:
    return (
        f"{virus} has no simulation preset, so no demo data: add a [{virus}.simulation] "
        "section like flu_a's in segpair/viruses.toml, or run "
        f"`segpair materialize -v {virus} -d VERSION` on a real data version"
    )


def _demo(registry, webserver: str | None) -> int:
    """Every virus's demo data version, launched through a webserver (a temporary `dagster
    dev` unless given) so the UI shows its runs; a virus without a simulation is skipped."""
    pairs = []
    for name in registry.names:
        version = registry.get(name).demo_data_version
        if version is None:
            print(f"skipping {_no_simulation(name)}", flush=True)
        else:
            pairs.append((name, version))
    if not pairs:
        print("no virus of the registry has a simulation preset: nothing to demo")
        return 2
    return _materialize(pairs, webserver=webserver or "start")


def _simulate(args, registry) -> int:
    virus = registry.get(args.virus)
    if virus.simulation is None:
        print(f"segpair simulate: {_no_simulation(virus.name)}", file=sys.stderr)
        return 2
    config = SimulationConfig(n_isolates=args.isolates, seed=args.seed)
    folder = write_data_version(simulate_population(virus, config), args.out, virus, config)
    print(f"wrote SIMULATED data version to {folder}")
    return 0


def main(argv: list[str] | None = None) -> int:
    from segpair.errors import InputDataError

    try:
        registry = Settings.from_environment().registry()
    except InputDataError as err:  # a malformed registry: its one line, not a traceback
        print(f"error: {err}", file=sys.stderr)
        return 2
    parser = argparse.ArgumentParser(prog="segpair", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    _add_pipeline_commands(sub, registry)
    _add_model_commands(sub)
    add_neighbours_command(sub, registry)
    add_models_command(sub)
    add_export_command(sub, registry)
    args = parser.parse_args(argv)
    if args.command == "neighbours":
        return run_neighbours(args)
    if args.command == "export":
        return run_export(args)
    if args.command == "models":
        return run_models(args)
    if args.command == "score":
        return _score(args, registry)
    if args.command == "evaluate":
        return _evaluate(args, registry)
    if args.command == "demo":
        return _demo(registry, args.webserver)
    if args.command == "materialize":
        pair = [(args.virus, args.data_version)]
        return _materialize(pair, args.job, args.assets, args.config, args.webserver)
    return _simulate(args, registry)


if __name__ == "__main__":
    sys.exit(main())
