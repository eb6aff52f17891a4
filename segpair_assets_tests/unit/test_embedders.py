"""Embedders: k-mer counts, tiny ESM-2 and Nucleotide Transformer through the real loading
path, pooling against a hand computation, batching invariance, order, truncation, OOM."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segpair.embeddings.batching import token_budget_batches
from segpair.embeddings.kmer import KmerEmbedder
from segpair.embeddings.language_models import LanguageModelEmbedder
from segpair_assets_tests.tiny_models import build_tiny_esm2, build_tiny_nucleotide_transformer

PROTEINS = [
    "MKTIIALSYILCLVFAQKIPGNDNSTATLCLGHHAVPNGTIVKTITNDQIEVTNATELVQSSSTGEICDSPHQ",
    "MNPNQKIITIGSVSLTISTICFFMQIAILITTVTLHFKQYEFNSPPNNQVMLCEPTIIERNITEIVYLTNTTIEKE",
    "MSLLTEVETPIRNEWGCRCNDSSD",
    "MERIKELRDLMSQSRTREILTKTTVDHMAIIKKYTSGRQEKNPALRMKWMMAMKYPITADKRIMEMIPERNEQGQTLWSKTNDAGSDRVMV",
    "MASQGTKRSYEQMETDGERQNATEIRASVGKMIGGIGRFYIQMCTELKLSDYEGRLIQNSLTIERMVLSAFDERRNK",
]


@pytest.fixture(scope="module")
def tiny_esm2(tmp_path_factory):
    return build_tiny_esm2(tmp_path_factory.mktemp("esm2"))


@pytest.fixture(scope="module")
def tiny_nt(tmp_path_factory):
    return build_tiny_nucleotide_transformer(tmp_path_factory.mktemp("nt"))


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


# ------------------------------------------------------------------ batching


def test_token_budget_batches_sort_and_respect_the_budget():
    lengths = [100, 5, 300, 50, 2000, 60]
    batches = token_budget_batches(lengths, toks_per_batch=400, extra_tokens=2)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(len(lengths)))
    assert [lengths[i] for i in flat] == sorted(lengths)  # length-sorted
    for b in batches:
        assert len(b) == 1 or max(lengths[i] + 2 for i in b) * len(b) <= 400
    assert [4] in batches  # longer than the budget: alone, never dropped


# ------------------------------------------------------------------ k-mer


def test_kmer_counts_by_hand():
    e = KmerEmbedder("k", "nucleotide", k=2, normalize="none")
    vec = e.counts("ACGTAC")  # AC CG GT TA AC
    idx = {a + b: 4 * "ACGT".index(a) + "ACGT".index(b) for a in "ACGT" for b in "ACGT"}
    assert vec[idx["AC"]] == 2 and vec[idx["CG"]] == vec[idx["GT"]] == vec[idx["TA"]] == 1
    assert vec.sum() == 5


def test_kmer_skips_ambiguous_and_normalises():
    e = KmerEmbedder("k", "protein", k=3)
    out = e.embed(["MKTXIAL", "", "MX"])
    assert out.ok == [0] and set(out.failed) == {1, 2}
    assert out.vectors.shape == (1, 8000)
    assert np.isclose(np.linalg.norm(out.vectors[0]), 1.0)
    raw = KmerEmbedder("k", "protein", k=3, normalize="none").counts("MKTXIAL")
    assert raw.sum() == 2  # MKT and IAL; the three 3-mers with X are skipped


def test_kmer_refuses_huge_dimensions():
    with pytest.raises(ValueError, match="dimensions"):
        KmerEmbedder("k", "protein", k=6)


# ------------------------------------------------------------------ ESM-2


def _hand_hidden(model_dir, seq: str, layer: int | None = None) -> np.ndarray:
    from transformers import AutoTokenizer, EsmModel

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = EsmModel.from_pretrained(model_dir, add_pooling_layer=False).eval()
    enc = tok([seq], return_tensors="pt")
    with torch.no_grad():
        out = model(**enc, output_hidden_states=True)
    states = out.last_hidden_state if layer is None else out.hidden_states[layer]
    return states[0].numpy()  # (L + 2, D): <cls> residues <eos>


@pytest.mark.parametrize("pooling", ["mean", "max", "cls"])
def test_esm2_pooling_matches_hand_computation(tiny_esm2, pooling):
    e = LanguageModelEmbedder("esm2", "esm2", str(tiny_esm2), pooling=pooling, device="cpu")
    got = e.embed([PROTEINS[2]]).vectors[0]
    h = _hand_hidden(tiny_esm2, PROTEINS[2])
    residues = h[1:-1]  # special tokens excluded
    want = {"mean": residues.mean(0), "max": residues.max(0), "cls": h[0]}[pooling]
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)


def test_esm2_layer_selection(tiny_esm2):
    first = LanguageModelEmbedder("e", "esm2", str(tiny_esm2), layer=1, device="cpu")
    second_last = LanguageModelEmbedder("e", "esm2", str(tiny_esm2), layer="second_last")
    want = _hand_hidden(tiny_esm2, PROTEINS[0], layer=1)[1:-1].mean(0)
    np.testing.assert_allclose(first.embed([PROTEINS[0]]).vectors[0], want, rtol=1e-4, atol=1e-5)
    # two layers: the second-last hidden state is layer 1
    np.testing.assert_allclose(
        second_last.embed([PROTEINS[0]]).vectors[0], want, rtol=1e-4, atol=1e-5
    )


def test_batching_and_sorting_do_not_change_vectors_and_order_is_kept(tiny_esm2):
    seqs = PROTEINS * 3
    batched = LanguageModelEmbedder("e", "esm2", str(tiny_esm2), toks_per_batch=300)
    out = batched.embed(seqs)
    assert out.ok == list(range(len(seqs)))
    one = LanguageModelEmbedder("e", "esm2", str(tiny_esm2), precision="fp32", toks_per_batch=1)
    singles = np.stack([one.embed([s]).vectors[0] for s in seqs])
    assert _cos(out.vectors, singles).min() >= 0.999
    # the same protein at positions 0, 5 and 10 gives the same vector: order is input order
    np.testing.assert_allclose(out.vectors[0], out.vectors[5], atol=1e-5)
    assert not np.allclose(out.vectors[0], out.vectors[1])


def test_truncation_is_counted(tiny_esm2):
    e = LanguageModelEmbedder("e", "esm2", str(tiny_esm2), max_length=30)
    out = e.embed(PROTEINS)
    assert out.truncated == sum(len(p) > 30 for p in PROTEINS)
    want = LanguageModelEmbedder("e", "esm2", str(tiny_esm2)).embed([PROTEINS[0][:30]])
    np.testing.assert_allclose(out.vectors[0], want.vectors[0], atol=1e-5)


def test_out_of_memory_halves_the_batch_and_reports_what_never_fits(tiny_esm2, monkeypatch):
    e = LanguageModelEmbedder("e", "esm2", str(tiny_esm2), toks_per_batch=10_000)
    e.load()
    real = e._embed_batch
    calls = []

    def flaky(texts):
        calls.append(len(texts))
        if len(texts) > 2 or any(len(t) > 80 for t in texts):
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(texts)

    monkeypatch.setattr(e, "_embed_batch", flaky)
    out = e.embed(PROTEINS)
    assert calls[0] == 5 and 1 in calls  # halved down to single sequences
    long_one = PROTEINS.index(max(PROTEINS, key=len))
    assert set(out.failed) == {long_one} and "out of memory" in out.failed[long_one]
    assert sorted(out.ok) == [i for i in range(5) if i != long_one]


def test_describe_names_everything_that_changes_vectors(tiny_esm2):
    d = LanguageModelEmbedder("e", "esm2", str(tiny_esm2), pooling="max").describe()
    assert d["pooling"] == "max" and d["dim"] == 32 and d["precision"] == "float32"
    assert d["weights"].startswith("local:")


def test_fastesm2_family_loads_through_trust_remote_code_path(tiny_esm2):
    # FastESM2 checkpoints ship their own modelling code; a local ESM directory exercises
    # the same AutoModel(trust_remote_code=True) path without downloading anything.
    e = LanguageModelEmbedder("f", "fastesm2", str(tiny_esm2), trust_remote_code=True)
    assert e.embed(PROTEINS[:2]).vectors.shape == (2, 32)


# ------------------------------------------------------------------ Nucleotide Transformer


def test_nucleotide_transformer_masked_mean(tiny_nt):
    from transformers import AutoTokenizer, EsmForMaskedLM

    seq = "ATGAAACGTACGTTTGGGCCCAAATTTGA"
    e = LanguageModelEmbedder("nt", "nucleotide_transformer", str(tiny_nt), max_length=100)
    assert e.input_kind == "nucleotide"
    got = e.embed([seq, "ATGCCCAAAGGG"]).vectors
    tok = AutoTokenizer.from_pretrained(tiny_nt)
    assert tok.tokenize(seq)[:2] == ["ATGAAA", "CGTACG"]  # 6-mer tokens
    model = EsmForMaskedLM.from_pretrained(tiny_nt).eval()
    enc = tok([seq], return_tensors="pt")
    with torch.no_grad():
        h = model(**enc, output_hidden_states=True).hidden_states[-1][0].numpy()
    np.testing.assert_allclose(got[0], h[1:-1].mean(0), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("packing", ["padded", "auto"])
def test_esm2_attention_really_runs_through_torch_sdpa(tiny_esm2, monkeypatch, packing):
    """transformers' ESM path is loaded with attn_implementation='sdpa'; check that its
    layers then call torch's scaled_dot_product_attention (padded: one call per layer and
    batch; packed, the default on a CPU: one per layer and sequence, each unpadded) rather
    than silently falling back to the eager matmul-softmax path."""
    calls = []
    real_sdpa = torch.nn.functional.scaled_dot_product_attention

    def counting_sdpa(*args, **kwargs):
        calls.append(args[0].shape)
        return real_sdpa(*args, **kwargs)

    e = LanguageModelEmbedder(
        "esm2", "esm2", str(tiny_esm2), toks_per_batch=10_000, packing=packing
    )
    e.load()  # the load-time probe runs both engines; counted from here on
    monkeypatch.setattr(torch.nn.functional, "scaled_dot_product_attention", counting_sdpa)
    assert e.attn_implementation == "sdpa"
    seqs = ["MKVLAGT" * 10, "MSTNPK" * 5]  # one batch
    e.embed(seqs)
    layers = e._model.config.num_hidden_layers
    if packing == "padded":
        assert not e.engine.packed and len(calls) == layers
    else:
        assert e.engine.packed and len(calls) == layers * len(seqs)
        assert sorted({shape[2] for shape in calls}) == [len(s) + 2 for s in seqs[::-1]]
