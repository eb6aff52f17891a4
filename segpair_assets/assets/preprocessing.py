"""Stage 1: raw records of a data version -> the cleaned `protein_final` table."""

import hashlib
from typing import Literal

import dagster as dg
import pandas as pd
from pydantic import Field

from resources.reproducibility import Reproducibility
from resources.storage import SegpairStorage
from resources.viruses import VirusRegistryResource
from segpair.cleaning import PROTEIN_FINAL_COLUMNS, CleaningConfig, build_protein_final
from segpair.errors import InputDataError
from segpair.readers import read_data_version
from segpair.report import markdown_table, protein_length_summary
from segpair.simulator import SIMULATED_LABEL, ensure_demo_data_version
from segpair_assets.assets.raw_files import raw_files
from segpair_assets.metadata import versioned_output
from segpair_assets.partitions import virus_and_version, virus_data_version_partitions
from segpair_assets.provenance import record_provenance

COLUMN_DOCS = {
    "brc_fea_id": "stable protein id (BV-BRC feature id, or accession:protein)",
    "assembly_id": "isolate (genome) id",
    "isolate_name": "strain / isolate name",
    "segment": "genome segment (registry name)",
    "function": "protein name (registry name)",
    "product": "product annotation as the source gave it",
    "esm2_ready_seq": "cleaned sequence for protein LMs (see segpair.cleaning)",
    "length": "length of esm2_ready_seq",
    "seq_hash": "MD5 of esm2_ready_seq",
    "n_ambiguous": "residues set to X",
    "length_flag": "'' for a typical length, else no_stop_codon / short / long (joined by +)",
    "prot_seq": "protein sequence as read or translated",
    "nt_seq": "coding nucleotide sequence, when the source is nucleotide",
    "accession": "sequence accession",
    "subtype": "subtype / genotype",
    "host": "host",
    "year": "collection year",
    "country": "country",
    "location": "place from the strain name",
    "source": "file:line of the raw record",
    "orf_has_stop": "nucleotide input: the reading frame ends in a stop codon (empty: protein "
    "input)",
}


_CLEANING = CleaningConfig()


class ProteinFinalConfig(dg.Config):
    nonstandard_policy: Literal["replace", "drop", "error"] = Field(
        default=_CLEANING.nonstandard_policy,
        description="Residues outside the 20 standard amino acids: 'replace' with X (counted), "
        "'drop' the record (counted), or 'error' (stop, naming the record).",
    )
    max_ambiguous_fraction: float = Field(
        default=_CLEANING.max_ambiguous_fraction,
        ge=0,
        le=1,
        description="Drop records with a larger share of X residues.",
    )
    length_policy: Literal["drop", "keep", "error"] = Field(
        default=_CLEANING.length_policy,
        description="Proteins of atypical length (length_flag: no_stop_codon, short, long): "
        "'drop' them (counted), 'keep' them flagged in length_flag (counted), or 'error'.",
    )
    min_length_fraction: float = Field(
        default=_CLEANING.min_length_fraction,
        gt=0,
        le=1,
        description="A primary protein under this x its registry expected length is 'short' "
        "(a partial record).",
    )
    max_length_fraction: float = Field(
        default=_CLEANING.max_length_fraction,
        ge=1,
        description="A protein over this x its expected length is 'long' (concatenated "
        "records or a wrong annotation).",
    )
    min_orf_fraction: float = Field(
        default=0.5,
        gt=0,
        le=1,
        description="Nucleotide input: reject an ORF shorter than this x the protein's "
        "expected length (partial or misannotated record).",
    )


def cleaning_config(config: ProteinFinalConfig) -> CleaningConfig:
    return CleaningConfig(
        config.nonstandard_policy,
        config.max_ambiguous_fraction,
        config.length_policy,
        config.min_length_fraction,
        config.max_length_fraction,
    )


PREVIEW_COLUMNS = ["brc_fea_id", "assembly_id", "segment", "function", "length", "subtype",
                   "host", "year", "esm2_ready_seq"]  # fmt: skip


def protein_final_metadata(df, report, result, manifest, reason: str, origin: str) -> dict:
    columns = [
        dg.TableColumn(c, str(df[c].dtype), description=COLUMN_DOCS.get(c))
        for c in PROTEIN_FINAL_COLUMNS
    ]
    return {
        "dagster/row_count": len(df),
        "dagster/column_schema": dg.TableSchema(columns=columns),
        "data_origin": origin,
        "data_description": manifest.description or "(no description in manifest)",
        "reader": result.reader,
        "reader_reason": reason,
        "source_files": dg.MetadataValue.json(result.files),
        "isolates": int(df["assembly_id"].nunique()),
        "distinct_sequences": int(df["seq_hash"].nunique()),
        "records_read": report.n_input,
        "records_dropped": report.n_input - report.n_output,
        "isolates_single_segment": report.isolates_single_segment,
        "isolates_incomplete": report.isolates_incomplete,
        "proteins_with_X": int((df["n_ambiguous"] > 0).sum()),
        "issue_counts": dg.MetadataValue.json(report.issues.counts),
        "proteins_per_segment": dg.MetadataValue.md(
            markdown_table(protein_length_summary(df), max_rows=50)
        ),
        "preview": dg.MetadataValue.md(markdown_table(df[PREVIEW_COLUMNS], max_rows=10)),
    }


@dg.asset(
    partitions_def=virus_data_version_partitions,
    deps=[raw_files],
    io_manager_key="parquet_io_manager",
    group_name="preprocessing",
    kinds={"pandas", "parquet"},
    description=(
        "One row per protein of a data version: ids (brc_fea_id, assembly_id), segment and "
        "protein name, the cleaned sequence for protein LMs (esm2_ready_seq), length, "
        "sequence hash, the coding nucleotide sequence where the source is nucleotide, and "
        "isolate metadata. Read from data/raw/{virus}/{data_version}/ by the reader its "
        "manifest.toml names (or that the files reveal). The demo data version is SIMULATED "
        "and written on first use."
    ),
)
def protein_final(
    context: dg.AssetExecutionContext,
    config: ProteinFinalConfig,
    storage: SegpairStorage,
    viruses: VirusRegistryResource,
    reproducibility: Reproducibility,
) -> dg.Output[pd.DataFrame]:
    virus_name, data_version = virus_and_version(context)
    virus = viruses.get(virus_name)
    folder = storage.raw_dir(virus_name, data_version)
    if ensure_demo_data_version(folder, virus, data_version):
        context.log.info(f"wrote the {SIMULATED_LABEL} demo data version to {folder}")
    prov = record_provenance(context, storage, reproducibility, config)

    result, manifest, reason = read_data_version(folder, virus, config.min_orf_fraction)
    context.log.info(
        f"{len(result.records)} raw protein records read by '{result.reader}': {reason}"
    )
    df, report = build_protein_final(
        result.records,
        virus,
        cleaning_config(config),
    )
    report.issues.merge(result.issues)
    for line in report.issues.summary_lines():
        context.log.warning(line)
    if df.empty:
        raise InputDataError(
            str(folder),
            "no protein survived reading and cleaning: " + "; ".join(report.issues.summary_lines()),
            "check the virus of this data version and the cleaning settings",
        )

    origin = SIMULATED_LABEL if manifest.origin == "simulated" else "real"
    metadata = protein_final_metadata(df, report, result, manifest, reason, origin)
    metadata.update(policy_metadata(config, manifest, report))
    context.log.info(
        f"protein_final: {len(df)} proteins, {metadata['isolates']} isolates ({origin})"
    )
    version = content_version(prov.data_fingerprint, prov.config_hash)
    return versioned_output(df, metadata, version)


def content_version(*parts: str) -> dg.DataVersion:
    """A data version from content identifiers: equal inputs, equal version."""
    return dg.DataVersion(hashlib.sha256("|".join(parts).encode()).hexdigest()[:16])


def policy_metadata(config: ProteinFinalConfig, manifest, report) -> dict:
    """The policies that decided what was dropped, beside the counts in issue_counts."""
    policies = config.model_dump()
    if manifest.format == "fasta":
        policies["unmatched_accessions"] = manifest.fasta.unmatched_accessions
    metadata = {"cleaning_policies": dg.MetadataValue.json(policies)}
    if report.issues.counts:
        metadata["issue_examples"] = dg.MetadataValue.md(
            "\n".join(f"- {line}" for line in report.issues.summary_lines())
        )
    return metadata
