"""Readers: each real format's sample, header styles, detection, and every bad input."""

from __future__ import annotations

import gzip
import random
from pathlib import Path

import pytest
from Bio.Data import CodonTable

from segpair.errors import InputDataError
from segpair.headers import parse_header
from segpair.readers import read_bvbrc, read_data_version, read_fasta, read_tables
from segpair.readers.manifest import MINIMAL_MANIFEST, load_manifest
from segpair_assets_tests.conftest import FIXTURES

# ---------------------------------------------------------------- headers


@pytest.mark.parametrize(
    "header, accession, strain, segment, subtype, host, year",
    [
        (
            "gb:CY171735|Organism:Influenza A virus A/Chicago/YGA_04200/2013|Segment:4"
            "|Subtype:H3N2|Host:Human [segment 4]",
            "CY171735",
            "A/Chicago/YGA_04200/2013",
            "4",
            "H3N2",
            "Human",
            2013,
        ),
        (
            "gi|324709|gb|J02147.1| Influenza A virus (A/Puerto Rico/8/1934(Cambridge)(H1N1)) "
            "segment 5, complete sequence [segment 5]",
            "J02147.1",
            "A/Puerto Rico/8/1934",
            "5",
            "H1N1",
            "Human",
            1934,
        ),
        (
            "KF000001 A/swine/Iowa/15/1930(H1N1) segment 4 HA",
            "KF000001",
            "A/swine/Iowa/15/1930",
            "4",
            "H1N1",
            "Swine",
            1930,
        ),
        (
            "gi|827037670|gb|KP339934.1| Severe fever with thrombocytopenia syndrome virus "
            "isolate 28S segment S, complete sequence [segment S]",
            "KP339934.1",
            "28S",
            "S",
            None,
            None,
            None,
        ),
        (
            "gi|770075321|dbj|AB985574.1| Severe fever with thrombocytopenia syndrome virus viral "
            "cRNA, segment S, complete sequence, strain: SPL168A [segment S]",
            "AB985574.1",
            "SPL168A",
            "S",
            None,
            None,
            None,
        ),
    ],
)
def test_parse_header_styles(header, accession, strain, segment, subtype, host, year):
    info = parse_header(header)
    assert (info.accession, info.strain, info.segment_token) == (accession, strain, segment)
    assert (info.subtype, info.host, info.year) == (subtype, host, year)


@pytest.mark.parametrize(
    "header, accession",
    [
        # NCBI's classic defline: the locus name after the accession is no accession.
        (
            "gi|1617491|gb|U62150.1|LRU62150 Influenza A virus (A/x/1/1995(H3N2)) segment 4",
            "U62150.1",
        ),
        ("gb|U62150.1|LRU62150 Influenza A virus segment 4", "U62150.1"),
        ("emb|LN871221.1|LN871221 Influenza A virus segment 4", "LN871221.1"),
        ("dbj|AB985574.1|ABX Severe fever with thrombocytopenia syndrome virus", "AB985574.1"),
        (
            "ref|NC_026433.1| Influenza A virus (A/California/07/2009(H1N1)) segment 4",
            "NC_026433.1",
        ),
        ("tpg|BK000001.1|TPA: something", "BK000001.1"),
        ("sp|P03452|HEMA_I34A1 Hemagglutinin OS=Influenza A virus", "P03452"),
        ("ENA|MN908947|MN908947.3 Severe acute respiratory syndrome coronavirus 2", "MN908947"),
        ("CY171735.1 Influenza A virus (A/Chicago/YGA_04200/2013(H3N2)) segment 4", "CY171735.1"),
        ("lcl|CY171735.1 Influenza A virus segment 4", "CY171735.1"),
        ("gb:CY171735|Organism:Influenza A virus A/Chicago/YGA_04200/2013|Segment:4", "CY171735"),
        ("gi|1617491 Influenza A virus segment 4", None),  # a gi number is no accession
        ("gnl|ird|12345 Influenza A virus segment 4", None),
    ],
)
def test_ncbi_identifier_styles(header, accession):
    assert parse_header(header).accession == accession


def test_classic_gi_header_matches_a_metadata_table_by_accession(flu, tmp_path):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(
        ">gi|1617491|gb|U62150.1|LRU62150 Influenza A virus segment 4 (HA)\nMKTIIALSY\n"
    )
    meta = tmp_path / "genomes.tsv"
    meta.write_text("accession\tgenome_id\nU62150.1\tgenome_7\n")
    res = read_fasta([fasta], flu, meta)
    row = res.records.iloc[0]
    assert (row["accession"], row["assembly_id"]) == ("U62150.1", "genome_7")


def test_two_digit_strain_year():
    assert parse_header("X1 A/Memphis/1/71(H3N2) segment 4").year == 1971
    assert parse_header("X1 A/Texas/50/12(H3N2) segment 4").year == 2012


# ---------------------------------------------------------------- BV-BRC


def test_bvbrc_sample(flu):
    d = FIXTURES / "bvbrc"
    res = read_bvbrc(
        [d / "BVBRC_genome_feature.csv"], flu, [d / "BVBRC_protein.faa"], d / "BVBRC_genome.csv"
    )
    df = res.records.set_index("brc_fea_id")
    # 9 rows: the mat_peptide is skipped, the hypothetical protein is no flu protein.
    assert len(df) == 7
    assert res.issues.counts == {"non_cds_feature_skipped": 1, "unrecognised_product": 1}
    assert "hypothetical protein" in res.issues.examples["unrecognised_product"][0]
    pb1f2 = df.loc["fig|11320.22345.peg.3"]
    assert (pb1f2["segment"], pb1f2["function"]) == ("PB1", "PB1-F2")
    ha = df.loc["fig|11320.33456.peg.1"]
    assert (ha["assembly_id"], ha["subtype"], ha["host"], ha["year"]) == (
        "11320.33456",
        "H1N2",
        "Swine",
        2015,
    )
    assert ha["isolate_name"] == "A/swine/Ohio/A01354/2015"
    assert df.loc["fig|11320.22345.peg.1", "prot_seq"].endswith("*")  # cleaning removes it


def test_bvbrc_detected_without_manifest(flu, fixture_copy):
    folder = fixture_copy("bvbrc")
    res, manifest, reason = read_data_version(folder, flu)
    assert manifest.format == "bvbrc" and res.reader == "bvbrc"
    assert manifest.bvbrc.genome_table == "BVBRC_genome.csv"
    assert "detected" in reason and "BVBRC_genome_feature.csv" in reason
    assert len(res.records) == 7


def test_bvbrc_api_column_names(flu, tmp_path):
    path = tmp_path / "features.tsv"
    path.write_text(
        "patric_id\tgenome_id\tgenome_name\tproduct\taa_sequence\n"
        "fig|1.1.peg.1\t1.1\tInfluenza A virus A/Ohio/09/2015(H3N2)\tNeuraminidase\tMNPNQKIIT\n"
    )
    res = read_bvbrc([path], flu)
    row = res.records.iloc[0]
    assert (row["brc_fea_id"], row["function"], row["isolate_name"], row["subtype"]) == (
        "fig|1.1.peg.1",
        "NA",
        "A/Ohio/09/2015",
        "H3N2",
    )


def test_bvbrc_feature_missing_from_protein_fasta_is_named(flu, fixture_copy):
    d = fixture_copy("bvbrc")
    faa = d / "BVBRC_protein.faa"
    records = faa.read_text().split(">")[1:]
    faa.write_text("".join(">" + r for r in records if not r.startswith("fig|11320.22345.peg.4|")))
    with pytest.raises(InputDataError, match=r"fig\|11320\.22345\.peg\.4"):
        read_bvbrc([d / "BVBRC_genome_feature.csv"], flu, [faa])


def test_bvbrc_without_sequences_says_what_to_export(flu, fixture_copy):
    d = fixture_copy("bvbrc")
    with pytest.raises(InputDataError, match="protein FASTA"):
        read_bvbrc([d / "BVBRC_genome_feature.csv"], flu)


# ---------------------------------------------------------------- FASTA


def test_ncbi_protein_fasta_sample(flu):
    res = read_fasta([FIXTURES / "ncbi_protein_fasta" / "proteins.fasta"], flu)
    df = res.records
    assert df["function"].tolist() == ["HA", "NA", "PB2", "NP", "HA", "HA"]
    assert df["assembly_id"].nunique() == 3
    pr8 = df[df["accession"] == "J02147.1"].iloc[0]
    assert (pr8["assembly_id"], pr8["subtype"], pr8["year"]) == (
        "A/Puerto Rico/8/1934",
        "H1N1",
        1934,
    )
    assert df.loc[df["accession"] == "CY171735", "subtype"].item() == "H3N2"


def _cds(protein: str, seed: int = 0) -> str:
    """A coding sequence for `protein` (+ TAA), synonymous codons drawn at random, seeded.

    Random codon choice gives the other frames stops every ~20 codons, as real genes do.
    """
    table = CodonTable.unambiguous_dna_by_id[1].forward_table
    synonyms: dict[str, list[str]] = {}
    for codon, aa in sorted(table.items()):
        synonyms.setdefault(aa, []).append(codon)
    rng = random.Random(seed)
    return "".join(rng.choice(synonyms[a]) for a in protein) + "TAA"


def _random_protein(n: int, seed: int) -> str:
    rng = random.Random(seed)
    return "M" + "".join(rng.choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(n - 1))


def _revcomp(nt: str) -> str:
    return nt[::-1].translate(str.maketrans("ACGT", "TGCA"))


def test_nucleotide_segments_are_translated(toy, tmp_path):
    # Segment A: UTRs around one ORF. Segment S: ambisense, NSX forward, NX reverse.
    seg_a = "CCTTGA" + _cds("MKLSEVRA") + "GGCC"
    nsx, nx = _random_protein(40, seed=1), _random_protein(30, seed=2)
    seg_s = "TTT" + _cds(nsx) + "CCCCC" + _revcomp(_cds(nx)) + "AA"
    fasta = tmp_path / "segs.fasta.gz"
    with gzip.open(fasta, "wt") as fh:
        fh.write(f">AB100001.1 toy isolate X1 segment 1\n{seg_a[:20]}\n{seg_a[20:]}\n")
        fh.write(f">AB100002.1 toy isolate X1 segment 2\n{seg_s.lower()}\n")
    res = read_fasta([fasta], toy)
    got = dict(zip(res.records["function"], res.records["prot_seq"], strict=True))
    assert got == {"PA1": "MKLSEVRA", "NSX": nsx, "NX": nx}
    nt = dict(zip(res.records["function"], res.records["nt_seq"], strict=True))
    assert nt["PA1"] == _cds("MKLSEVRA")[:-3]
    assert set(res.records["brc_fea_id"]) == {"AB100001.1:PA1", "AB100002.1:NSX", "AB100002.1:NX"}


def test_metadata_table_supplies_isolate(toy, tmp_path):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(f">gb:AB100001|segment 1\n{_cds('MKLSEVRA')}\n")
    meta = tmp_path / "meta.tsv"
    meta.write_text("accession\tgenome_id\tcountry\nAB100001.1\tg42\tJapan\n")
    res = read_fasta([fasta], toy, meta, "accession", "genome_id")
    row = res.records.iloc[0]
    assert (row["assembly_id"], row["country"]) == ("g42", "Japan")  # version-less match


def test_short_orf_is_counted_and_named(toy, tmp_path):
    fasta = tmp_path / "s.fasta"
    fasta.write_text(f">AB100009 toy isolate X9 segment 1\nCC{_cds('MKL')}GG\n")
    res = read_fasta([fasta], toy)
    assert res.records.empty
    assert res.issues.counts == {"no_usable_orf": 1}
    assert "AB100009" in res.issues.examples["no_usable_orf"][0]


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("MKTIIAL\n>x A/a/1/2000 segment 4\nMKT\n", r"s\.fasta:1", "before the first '>'"),
        (">r1 A/a/1/2000 segment 4\nMKT 12 IIAL\n", r"s\.fasta:2 \(record r1\)", "characters"),
        (
            ">r1 A/a/1/2000 segment 4\n\n>r2 A/a/1/2000 segment 6\nMNP\n",
            r"record r1",
            "empty sequence",
        ),
        (">r1 segment 4 hemagglutinin\nMKT\n", r"record r1", "no isolate"),
        (">r1 A/a/1/2000 segment 9\nMKT\n", r"record r1", "no segment"),
        (">r1 A/a/1/2000 (HA)\nMKT\n>r1 A/b/1/2000 (HA)\nMKA\n", r"'r1'", "appears 2 times"),
        ("", r"s\.fasta", "no FASTA records"),
    ],
)
def test_bad_fasta_names_the_record(flu, tmp_path, text, where, problem):
    path = tmp_path / "s.fasta"
    path.write_text(text)
    with pytest.raises(InputDataError, match=where) as err:
        read_fasta([path], flu)
    assert problem in str(err.value) and "Fix:" in str(err.value)


# ---------------------------------------------------------------- tables


def test_table_sample(flu):
    res = read_tables([FIXTURES / "table" / "proteins.csv"], flu)
    df = res.records.set_index("brc_fea_id")
    assert df.loc["p001", ["segment", "function"]].tolist() == ["HA", "HA"]
    assert df.loc["p003", ["segment", "function"]].tolist() == ["PB1", "PB1"]
    assert df.loc["p004", ["segment", "function"]].tolist() == ["HA", "HA"]
    assert df.loc["p006", ["segment", "function", "year"]].tolist() == ["NP", "NP", 1934]


def test_table_column_map(flu, tmp_path):
    path = tmp_path / "t.tsv"
    path.write_text("acc\tstrain_id\tgene\tAA\nq1\ts1\tneuraminidase\tMNPNQK\n")
    cols = {"brc_fea_id": "acc", "assembly_id": "strain_id", "function": "gene", "prot_seq": "AA"}
    res = read_tables([path], flu, cols)
    assert res.records.iloc[0][["brc_fea_id", "function"]].tolist() == ["q1", "NA"]


@pytest.mark.parametrize(
    "text, where, problem",
    [
        ("protein_id,isolate_id,segment,sequence\np1,i1,4,MKT\n", r"t\.csv", "manifest"),
        ("protein_id,segment,sequence\np1,4,MKT\n", r"t\.csv", "missing required column"),
        ("protein_id,isolate_id,segment,sequence\np1,i1,4,\n", r"t\.csv:2", "empty sequence"),
        ("protein_id,isolate_id,segment,sequence\np1,i1,12,MKT\n", r"t\.csv:2", "no segment"),
        (
            "protein_id,isolate_id,function,sequence\np1,i1,HA,MKT\np1,i2,NA,MNP\n",
            r"'p1'",
            "appears 2",
        ),
        (
            "protein_id,isolate_id,segment,function,sequence\np1,i1,6,HA,MKT\n",
            r"t\.csv:2",
            "segment",
        ),
        ('protein_id,isolate_id,segment,sequence\np1,i1,4,"MKT\n', r"t\.csv", "cannot be parsed"),
        ("protein_id,isolate_id,segment\np1,i1,4\n", r"t\.csv", "no sequence column"),
    ],
)
def test_bad_table_names_the_record(flu, tmp_path, text, where, problem):
    path = tmp_path / "t.csv"
    path.write_text(text)
    if problem == "manifest":  # a good table, read through the folder: sanity of the others
        res, manifest, _ = read_data_version(tmp_path, flu)
        assert manifest.format == "table" and len(res.records) == 1
        return
    with pytest.raises(InputDataError, match=where) as err:
        read_tables([path], flu)
    assert problem in str(err.value)


# ---------------------------------------------------------------- detection and manifest


def test_ambiguous_folder_asks_for_a_manifest(flu, tmp_path):
    (tmp_path / "a.fasta").write_text(">r1 A/a/1/2000 (HA)\nMKT\n")
    (tmp_path / "b.csv").write_text("protein_id,isolate_id,segment,sequence\np1,i1,4,MKT\n")
    with pytest.raises(InputDataError, match="manifest.toml"):
        read_data_version(tmp_path, flu)
    (tmp_path / "manifest.toml").write_text('format = "table"\n[table]\nfiles = ["b.csv"]\n')
    res, manifest, reason = read_data_version(tmp_path, flu)
    assert manifest.format == "table" and "manifest.toml says" in reason


def test_missing_folder_lists_existing_versions(flu, tmp_path):
    (tmp_path / "v1").mkdir()
    with pytest.raises(InputDataError, match=r"v1"):
        read_data_version(tmp_path / "v2", flu)


@pytest.mark.parametrize(
    "manifest, problem",
    [
        ('format = "fastq"\n', "format = 'fastq': Input should be 'fasta', 'table' or 'bvbrc'"),
        ('format = "fasta"\nfiels = 1\n', "unknown key 'fiels' (allowed here: ['bvbrc', "),
        (
            'format = "fasta"\n[fasta]\nfile = ["a.fa"]\n',
            "unknown key 'fasta.file' (allowed here: ['accession_column', 'files',",
        ),
        ('origin = "real"\n', "required key 'format' is missing"),
        ('format = "fasta\n', "is not valid TOML (Illegal character"),
        ('format = "fasta"\n[fasta]\nfiles = ["nope.fa"]\n', "does not exist"),
    ],
)
def test_bad_manifest(flu, tmp_path, manifest, problem):
    (tmp_path / "manifest.toml").write_text(manifest)
    with pytest.raises(InputDataError) as err:
        read_data_version(tmp_path, flu)
    assert problem in str(err.value)
    if "does not exist" not in problem:  # the fix shows a manifest that is itself valid
        assert 'format = "fasta"  # or "table", "bvbrc"' in str(err.value)
        (tmp_path / "manifest.toml").write_text(MINIMAL_MANIFEST)
        assert load_manifest(tmp_path).fasta.files == ["genomes.fasta.gz"]


def test_empty_folder(flu, tmp_path):
    with pytest.raises(InputDataError, match="holds no FASTA"):
        read_data_version(tmp_path, flu)


def test_reader_paths_outside_the_folder(flu, tmp_path):
    """Real sets are read in place: manifests may name absolute paths."""
    folder = tmp_path / "v"
    folder.mkdir()
    src = Path(FIXTURES / "ncbi_protein_fasta" / "proteins.fasta").resolve()
    (folder / "manifest.toml").write_text(f'format = "fasta"\n[fasta]\nfiles = ["{src}"]\n')
    res, _, _ = read_data_version(folder, flu)
    assert len(res.records) == 6


# ---------------------------------------------------------------- corrupt compressed files


def _gz_variants(tmp_path: Path, name: str, text: str) -> dict[str, Path]:
    """The same content as a truncated, a bit-flipped and a not-compressed '.gz' file."""
    good = gzip.compress(text.encode() * 200)
    flipped = bytearray(good)
    flipped[len(flipped) // 2] ^= 0xFF
    out = {}
    for kind, data in {
        "truncated": good[: len(good) // 2],
        "bit_flipped": bytes(flipped),
        "plain_text": text.encode(),
    }.items():
        path = tmp_path / kind / name
        path.parent.mkdir()
        path.write_bytes(data)
        out[kind] = path
    return out


@pytest.mark.parametrize("kind", ["truncated", "bit_flipped", "plain_text"])
def test_corrupt_gzip_fasta_names_the_file(flu, tmp_path, kind):
    record = ">r1 A/a/1/2000 segment 4 (HA)\nMKTIIALSYIFCLVFA\n"
    path = _gz_variants(tmp_path, "s.fasta.gz", record)[kind]
    with pytest.raises(InputDataError) as err:
        read_fasta([path], flu)
    assert str(path) in str(err.value) and "gzip -t" in str(err.value)


@pytest.mark.parametrize("kind", ["truncated", "bit_flipped", "plain_text"])
def test_corrupt_gzip_table_names_the_file(flu, tmp_path, kind):
    path = _gz_variants(tmp_path, "p.csv.gz", "brc_fea_id,assembly_id,function,prot_seq\n")[kind]
    with pytest.raises(InputDataError) as err:
        read_tables([path], flu)
    assert str(path) in str(err.value) and "gzip -t" in str(err.value)


def test_record_cut_inside_the_gene_is_marked(toy, tmp_path):
    whole = "CCTTGA" + _cds("MKLSEVRAQW") + "GGCC"
    cut = "CCTTGA" + _cds("MKLSEVRAQW")[:24]  # 8 codons, no stop: a truncated record
    fasta = tmp_path / "s.fasta"
    fasta.write_text(
        f">AB1 toy isolate X1 segment 1\n{whole}\n>AB2 toy isolate X2 segment 1\n{cut}\n"
    )
    res = read_fasta([fasta], toy)
    got = dict(zip(res.records["accession"], res.records["orf_has_stop"], strict=True))
    assert got == {"AB1": True, "AB2": False}


def _two_segment_genome(tmp_path: Path) -> tuple[Path, Path]:
    """One genome (g1) as two records; the metadata table lists only the first."""
    fasta = tmp_path / "g.fasta"
    fasta.write_text(
        ">AB100001.1 toy strain S1 segment 1\n" + _cds("MKLSEVRAQW") + "\n"
        ">AB100002.1 toy strain S1b segment 1\n" + _cds("MKLSEVRAQF") + "\n"
    )
    meta = tmp_path / "genomes.tsv"
    meta.write_text("accession\tgenome_id\nAB100001.1\tg1\n")
    return fasta, meta


def test_accessions_missing_from_the_metadata_table_stop_the_run(toy, tmp_path):
    fasta, meta = _two_segment_genome(tmp_path)
    with pytest.raises(InputDataError) as err:
        read_fasta([fasta], toy, meta)
    msg = str(err.value)
    assert str(meta) in msg and "1 of 2 FASTA records" in msg and "AB100002.1" in msg
    assert 'unmatched_accessions = "use_header"' in msg


def test_header_fallback_is_explicit_and_counted(toy, tmp_path):
    fasta, meta = _two_segment_genome(tmp_path)
    (tmp_path / "manifest.toml").write_text(
        'format = "fasta"\n[fasta]\nfiles = ["g.fasta"]\nmetadata_table = "genomes.tsv"\n'
        'unmatched_accessions = "use_header"\n'
    )
    res, _, _ = read_data_version(tmp_path, toy)
    assert sorted(res.records["assembly_id"]) == ["S1b", "g1"]
    assert res.issues.counts["metadata_from_header"] == 1
    assert "AB100002.1" in res.issues.examples["metadata_from_header"][0]
