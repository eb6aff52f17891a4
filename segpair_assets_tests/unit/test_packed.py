"""The packed (unpadded) engine against the padded Hugging Face forward: tiny ESM-2, an
ESM-1b-style model (absolute positions, embedding layer norm), a tiny Nucleotide
Transformer and one with a gated MLP; every pooling and layer choice, sequences at the
truncation limit; attention pooling against the model's own eager attention; the load
probe, the refusals, CPU workers, the nucleotide alphabet check."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from segpair.embeddings.batching import token_budget_batches
from segpair.embeddings.language_models import LanguageModelEmbedder
from segpair.embeddings.packed import EsmLayout, PackedBatch
from segpair_assets_tests.tiny_models import build_tiny_esm2, build_tiny_nucleotide_transformer

RNG = np.random.default_rng(7)
MAX_RESIDUES = 60
# Lengths from 3 to past the truncation limit; one sequence carries a mask token, which
# ESM's token dropout rescales per sequence.
PROTEINS = [
    "".join(RNG.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=n)) for n in (3, 17, 45, 59, 60, 61, 90)
] + ["MKV<mask>LLAGTW"]
MAX_KMERS = 40
DNA = ["".join(RNG.choice(list("ACGT"), size=n)) for n in (6, 13, 120, 239, 240, 241, 400)]


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    root = tmp_path_factory.mktemp("packed")
    return {
        "esm2": build_tiny_esm2(root / "esm2"),
        "esm1b": build_tiny_esm2(root / "esm1b", esm1b_style=True),
        "nt": build_tiny_nucleotide_transformer(root / "nt"),
    }


def _cos(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def _pair(path, family: str, **options) -> tuple[LanguageModelEmbedder, LanguageModelEmbedder]:
    limit = MAX_KMERS if family == "nucleotide_transformer" else MAX_RESIDUES
    make = lambda packing: LanguageModelEmbedder(  # noqa: E731
        "e", family, str(path), max_length=limit, device="cpu", precision="fp32",
        toks_per_batch=200, packing=packing, **options,
    )  # fmt: skip
    return make("packed"), make("padded")


@pytest.mark.parametrize("model", ["esm2", "esm1b", "nt"])
@pytest.mark.parametrize(
    "pooling, layer",
    [("mean", "last"), ("max", "last"), ("cls", "last"), ("attention", "last"),
     ("mean", "second_last"), ("attention", 1), ("mean", 0), ("max", -2)],
)  # fmt: skip
def test_packed_vectors_equal_padded_vectors(models, model, pooling, layer):
    family = "nucleotide_transformer" if model == "nt" else "esm2"
    seqs = DNA if model == "nt" else PROTEINS
    packed, padded = _pair(models[model], family, pooling=pooling, layer=layer)
    got, want = packed.embed(seqs), padded.embed(seqs)
    assert packed.engine.packed and not padded.engine.packed
    assert got.ok == want.ok == list(range(len(seqs)))
    assert got.truncated == want.truncated == 2  # two inputs past the limit, both cut
    assert got.tokens == want.tokens
    assert _cos(got.vectors, want.vectors).min() >= 0.9999


def test_packed_batch_keeps_sequences_apart(models):
    """A sequence's vector does not depend on what it is packed with."""
    packed, _ = _pair(models["esm2"], "esm2")
    alone = np.stack([packed.embed([s]).vectors[0] for s in PROTEINS[:4]])
    together = packed.embed(PROTEINS[:4]).vectors
    assert _cos(alone, together).min() >= 0.99999
    assert not np.allclose(together[0], together[1])


def test_packed_batch_layout():
    batch = PackedBatch.of([[0, 5, 6, 2], [0, 7, 2]], [[1, 0, 0, 1], [1, 0, 1]])
    assert batch.cu_seqlens.tolist() == [0, 4, 7] and batch.max_len == 4
    assert batch.positions.tolist() == [0, 1, 2, 3, 0, 1, 2]
    assert batch.seq_index.tolist() == [0, 0, 0, 0, 1, 1, 1]
    assert batch.residue_mask.tolist() == [False, True, True, False, False, True, False]


def test_nested_tensor_attention_equals_per_sequence_attention():
    """The GPU kernel `nested` (SDPA on jagged nested tensors) computes what the
    per-sequence loop does; on a CPU it runs too, slowly, so it is checked here."""
    from segpair.embeddings.packed import attend

    torch.manual_seed(0)
    batch = PackedBatch.of([[0] * n for n in (5, 17, 9)], [[0] * n for n in (5, 17, 9)])
    qkv = torch.randn(batch.n_tokens, 3, 4, 8).unbind(1)
    want = attend(*qkv, batch, "per_sequence")
    got = attend(*qkv, batch, "nested")
    torch.testing.assert_close(got.reshape(want.shape), want, rtol=1e-5, atol=1e-5)
    alone = torch.nn.functional.scaled_dot_product_attention(
        *(t[5:22].transpose(0, 1) for t in qkv), scale=1.0
    ).transpose(0, 1)
    torch.testing.assert_close(want[5:22], alone, rtol=1e-5, atol=1e-5)


def test_gated_mlp_of_nucleotide_transformer_v2_runs_the_modules_own_code(models):
    """NT v2's remote code replaces the MLP with a gated (SwiGLU) one; the packed forward
    calls a layer's own `intermediate` and `output` when they are not transformers'."""

    class GatedIntermediate(torch.nn.Module):
        def __init__(self, hidden: int, inner: int):
            super().__init__()
            self.dense = torch.nn.Linear(hidden, 2 * inner, bias=False)

        def forward(self, x):
            gate, value = self.dense(x).chunk(2, dim=-1)
            return torch.nn.functional.silu(gate) * value

    packed, padded = _pair(models["nt"], "nucleotide_transformer")
    torch.manual_seed(1)
    for e in (packed, padded):
        e.load()
        cfg = e._model.config
        for layer in e._model.esm.encoder.layer:
            gated = GatedIntermediate(cfg.hidden_size, cfg.intermediate_size)
            torch.manual_seed(1)
            torch.nn.init.normal_(gated.dense.weight, std=0.2)
            layer.intermediate = gated
    packed._layout = EsmLayout(packed._model)  # rebuilt over the gated layers
    assert packed._layout.plain_layers == [False, False]
    got, want = packed.embed(DNA), padded.embed(DNA)
    assert _cos(got.vectors, want.vectors).min() >= 0.9999


def test_attention_pooling_weights_residues_by_the_models_own_attention(models):
    """By hand from transformers' eager attention probabilities of the last layer: the
    attention each residue receives, averaged over heads and residue queries."""
    from transformers import AutoTokenizer, EsmModel

    seq = PROTEINS[3]
    got = LanguageModelEmbedder(
        "e", "esm2", str(models["esm2"]), pooling="attention", device="cpu"
    ).embed([seq])
    tok = AutoTokenizer.from_pretrained(models["esm2"])
    model = EsmModel.from_pretrained(
        models["esm2"], add_pooling_layer=False, attn_implementation="eager"
    ).eval()
    with torch.no_grad():
        out = model(**tok([seq], return_tensors="pt"), output_attentions=True)
    probs = out.attentions[-1][0]  # (heads, L, L)
    received = probs[:, 1:-1].mean((0, 1))[1:-1]  # residue queries -> residue keys
    weights = received / received.sum()
    want = (out.last_hidden_state[0, 1:-1] * weights[:, None]).sum(0).numpy()
    np.testing.assert_allclose(got.vectors[0], want, rtol=1e-4, atol=1e-5)
    mean = out.last_hidden_state[0, 1:-1].mean(0).numpy()
    assert not np.allclose(got.vectors[0], mean, atol=1e-3)  # not the mean in disguise


def test_attention_pooling_refuses_layer_zero(models):
    e = LanguageModelEmbedder("e", "esm2", str(models["esm2"]), pooling="attention", layer=0)
    with pytest.raises(ValueError, match="layer 0 is the embeddings"):
        e.load()


def test_a_layout_the_packed_forward_does_not_know_runs_padded(models, monkeypatch):
    monkeypatch.setattr(EsmLayout, "unsupported_reason", staticmethod(lambda m: "remote code"))
    auto = LanguageModelEmbedder("e", "esm2", str(models["esm2"]), device="cpu")
    auto.load()
    assert not auto.engine.packed and "remote code" in auto.runtime()["engine"]
    assert auto.embed(PROTEINS[:2]).vectors.shape == (2, 32)
    with pytest.raises(ValueError, match="cannot run packed .*remote code.*'padded'"):
        LanguageModelEmbedder("e", "esm2", str(models["esm2"]), packing="packed").load()
    with pytest.raises(ValueError, match="pooling='attention'.*remote code.*mean, max or cls"):
        LanguageModelEmbedder("e", "esm2", str(models["esm2"]), pooling="attention").load()


def test_probe_rejects_a_packed_forward_that_disagrees(models, monkeypatch):
    """A kernel whose vectors differ from the padded forward is never used."""
    from segpair.embeddings import packed as packed_module

    real = packed_module.attend

    def off_by_a_bit(q, k, v, batch, kernel):
        return real(q, k, v, batch, kernel) * 1.5

    monkeypatch.setattr(packed_module, "attend", off_by_a_bit)
    e = LanguageModelEmbedder("e", "esm2", str(models["esm2"]), device="cpu")
    e.load()
    assert not e.engine.packed and "cosine" in e.engine.note


def test_failed_compile_keeps_the_eager_packed_engine(models, monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("no C++ compiler (simulated)")

    monkeypatch.setattr(torch, "compile", no_compiler)
    e = LanguageModelEmbedder("e", "esm2", str(models["esm2"]), compile_encoder=True)
    e.load()
    assert e.engine.packed and not e.engine.compiled
    assert "compile failed" in e.engine.note and "no C++ compiler" in e.engine.note
    assert e.embed(PROTEINS[:2]).vectors.shape == (2, 32)


def test_load_time_timing_keeps_the_faster_engine(models):
    """What 'auto' does on a GPU (timed here on the CPU): both engines run one batch and
    the faster is kept, with the timings in the engine's note."""
    e = LanguageModelEmbedder("e", "esm2", str(models["esm2"]), toks_per_batch=600)
    e.load()
    chosen = e._faster_engine(e.engine)
    assert "timed at load: packed" in chosen.note and "padded" in chosen.note
    assert chosen.packed == ("padded faster" not in chosen.note)
    assert chosen.kernel == (e.engine.kernel if chosen.packed else None)


def test_cpu_workers_give_the_same_vectors_as_one(models):
    one = LanguageModelEmbedder("e", "esm2", str(models["esm2"]), toks_per_batch=60, cpu_workers=1)
    two = LanguageModelEmbedder("e", "esm2", str(models["esm2"]), toks_per_batch=60, cpu_workers=2)
    threads = torch.get_num_threads()
    a, b = one.embed(PROTEINS), two.embed(PROTEINS)
    assert torch.get_num_threads() == threads  # restored after the workers
    assert a.ok == b.ok and _cos(a.vectors, b.vectors).min() >= 0.99999
    assert two.runtime()["cpu_workers"] == 2


def test_packed_batches_count_real_tokens():
    lengths = [100, 5, 300, 50, 2000, 60]
    batches = token_budget_batches(lengths, toks_per_batch=400, packed=True)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for b in batches:
        assert len(b) == 1 or sum(lengths[i] + 2 for i in b) <= 400
    # padded, [5, 50, 60, 100] would cost 4 x 102 > 400; packed they fit: 223 tokens
    assert [1, 3, 5, 0] in batches


def test_nucleotide_inputs_outside_acgtn_are_refused_and_counted(models):
    e = LanguageModelEmbedder("nt", "nucleotide_transformer", str(models["nt"]))
    out = e.embed(["ATGAAACGT", "ATGRYACGTN", "atgaaacgt", "ATG-AAA"])
    assert out.outside_alphabet == 2 and set(out.failed) == {1, 3}
    assert "'RY'" in out.failed[1] and "position 4" in out.failed[1]
    assert "replace ambiguity codes by N" in out.failed[1]
    # lower case is read as upper case, not as unknown tokens
    np.testing.assert_allclose(out.vectors[0], out.vectors[1], atol=1e-6)
