"""A file that is not a segpair checkpoint is refused in one line that names the file and
where real checkpoints come from, by the loader and by `segpair score` / `evaluate`."""

from __future__ import annotations

import collections
import pickle
import re

import pytest
import torch

from segpair.errors import InputDataError
from segpair.scoring import PairScorer
from segpair.training.checkpoint import load_checkpoint, read_checkpoint
from segpair_assets.cli import main as cli_main
from segpair_assets_tests.tiny_checkpoints import tiny_checkpoint


def _truncated(path):
    data = tiny_checkpoint(path.with_name("good.pt")).read_bytes()
    path.write_bytes(data[: len(data) // 2])


def _without(key):
    def write(path):
        blob = torch.load(tiny_checkpoint(path.with_name("good.pt")), weights_only=True)
        blob["meta"].pop(key)
        torch.save(blob, path)

    return write


def _other_weights(path):
    """A segpair checkpoint whose weights are of another architecture than its meta says."""
    blob = torch.load(tiny_checkpoint(path.with_name("good.pt")), weights_only=True)
    blob["meta"]["hidden"] = [16]
    torch.save(blob, path)


NOT_CHECKPOINTS = {  # name: (how to write it, what the error says it is)
    "text": (lambda p: p.write_text("this is not a model\nbut it is named model.pt\n"),
             "a text file"),
    "empty": (lambda p: p.write_bytes(b""), "the file is empty"),
    "truncated": (_truncated, "a damaged or truncated torch file"),
    "a tensor": (lambda p: torch.save(torch.zeros(3), p), "it holds Tensor"),
    "a state dict": (lambda p: torch.save({"weight": torch.zeros(3)}, p),
                     r"it holds a dict with keys \['weight'\]"),
    "a list": (lambda p: torch.save([1, 2, 3], p), "it holds list"),
    "another pickle": (lambda p: p.write_bytes(pickle.dumps(collections.Counter("abc"))),
                       "a Python pickle"),
    "meta without threshold": (_without("threshold"), r"its meta lacks \['threshold'\]"),
    "weights of another shape": (_other_weights, "its weights do not fit"),
}  # fmt: skip


@pytest.fixture(params=sorted(NOT_CHECKPOINTS))
def not_a_checkpoint(request, tmp_path):
    path = tmp_path / "model.pt"
    write, _what = NOT_CHECKPOINTS[request.param]
    write(path)
    return path, NOT_CHECKPOINTS[request.param][1]


def test_the_loader_names_the_file_and_the_fix(not_a_checkpoint):
    not_a_checkpoint, what = not_a_checkpoint
    with pytest.raises(InputDataError) as info:
        load_checkpoint(not_a_checkpoint)
    message = str(info.value)
    assert message.startswith(f"{not_a_checkpoint}: not a segpair model checkpoint ("), message
    assert re.search(what, message), message
    assert "Fix: pass the model.pt of a pair_classifier_" in message and "\n" not in message
    with pytest.raises(InputDataError, match="not a segpair model checkpoint"):
        PairScorer.from_checkpoint(not_a_checkpoint)


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_the_cli_says_it_in_one_line_and_exits_2(command, not_a_checkpoint, tmp_path, capsys):
    not_a_checkpoint, _what = not_a_checkpoint
    out = tmp_path / "out.tsv"
    argv = [command, "-m", str(not_a_checkpoint), "-i", str(tmp_path), "-o", str(out)]
    assert cli_main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: {not_a_checkpoint}: not a segpair model checkpoint"), err
    assert len(err.splitlines()) == 1 and "pair_classifier_" in err
    assert not out.exists()


@pytest.mark.parametrize("command", ["score", "evaluate"])
def test_a_missing_or_folder_checkpoint_says_where_models_come_from(command, tmp_path, capsys):
    for given, problem in ((tmp_path / "nope.pt", "no checkpoint there"),
                           (tmp_path, "is a folder, not a checkpoint file")):  # fmt: skip
        argv = [command, "-m", str(given), "-i", str(tmp_path), "-o", str(tmp_path / "x.tsv")]
        assert cli_main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith(f"error: {given}: {problem}"), err
        assert len(err.splitlines()) == 1 and "pair_classifier_" in err


def test_a_real_checkpoint_still_loads(tmp_path):
    path = tiny_checkpoint(tmp_path / "model.pt")
    assert set(read_checkpoint(path)) == {"state_dict", "meta"}
    model, meta = load_checkpoint(path)
    assert meta["virus"] == "flu_a" and not model.training
