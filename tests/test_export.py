"""A trained checkpoint as a stand-alone scorer (``--export``): the exported ONNX and
TorchScript models give the eager model's top-k for real users, and load without RecBole."""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch

from helpers import MM_SLICE, fast_options
from recbole_mdsrec.cli import run as cli
from recbole_mdsrec.training import runner
from recbole_mdsrec.training.export import TopKScorer, export_scorer
from recbole_mdsrec.training.recommend import Recommender

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module", params=["MDSRec", "SASRec"])
def checkpoint(request, mm_slice, tmp_path_factory):
    """A plugin model and a RecBole model, trained one epoch on the real slice."""
    options = fast_options(mm_slice, tmp_path_factory.mktemp("export"), modalities=["image", "text"],
                           train_batch_size=512, seed=3, epochs=1)
    return runner.run(request.param, MM_SLICE, config_dict=options).checkpoint


def _real_users(recommender: Recommender, n: int = 64):
    tokens = recommender.dataset.field2id_token[recommender.dataset.uid_field][1:n + 1]
    return recommender.padded([recommender.user_history(str(t)) for t in tokens])


def test_onnx_top_k_equals_the_eager_models(checkpoint, tmp_path):
    import onnxruntime

    exported = export_scorer(checkpoint, tmp_path / "onnx", "onnx", topk=10)
    recommender = Recommender(checkpoint)
    item_seq, lengths = _real_users(recommender)
    with torch.no_grad():
        scores, items = TopKScorer(recommender.model, 10).eval()(item_seq, lengths)
    session = onnxruntime.InferenceSession(str(exported.model_file))
    got_scores, got_items = session.run(["scores", "items"], {"item_seq": item_seq.numpy(), "item_seq_len": lengths.numpy()})
    assert got_items.shape == (64, 10) and got_items.dtype == np.int64
    np.testing.assert_allclose(got_scores, scores.numpy(), atol=1e-4, rtol=1e-4)
    ties = np.isclose(got_scores[:, :-1], got_scores[:, 1:], atol=1e-5).any(1)
    assert (got_items[~ties] == items.numpy()[~ties]).all() and (~ties).sum() > 50
    for row in range(64):  # never the user's own items, never padding
        assert not set(got_items[row]) & set(item_seq[row].tolist())
    manifest = json.loads(exported.manifest_file.read_text())
    assert manifest["max_seq_length"] == item_seq.shape[1] and manifest["topk"] == 10
    rows = exported.items_file.read_text().splitlines()
    assert rows[0] == "id\titem\ttitle" and len(rows) == recommender.model.n_items  # header + every item but padding


def test_torchscript_top_k_equals_the_eager_models(checkpoint, tmp_path):
    exported = export_scorer(checkpoint, tmp_path / "ts", "torchscript", topk=5)
    recommender = Recommender(checkpoint)
    item_seq, lengths = _real_users(recommender, 16)
    with torch.no_grad():
        expected = TopKScorer(recommender.model, 5).eval()(item_seq, lengths)
        got = torch.jit.load(str(exported.model_file))(item_seq, lengths)
    torch.testing.assert_close(got[0], expected[0], atol=1e-4, rtol=1e-4)


def test_the_exported_scorer_runs_without_recbole(checkpoint, tmp_path):
    exported = export_scorer(checkpoint, tmp_path / "alone", "onnx", topk=3)
    script = (
        "import sys; sys.modules['recbole'] = None; sys.modules['recbole_mdsrec'] = None\n"
        "import numpy as np, onnxruntime\n"
        f"s = onnxruntime.InferenceSession({str(exported.model_file)!r})\n"
        "seq = np.zeros((2, s.get_inputs()[0].shape[1]), np.int64); seq[:, :3] = [[1, 2, 3], [4, 5, 6]]\n"
        "scores, items = s.run(None, {'item_seq': seq, 'item_seq_len': np.array([3, 3])})\n"
        "print(items.shape, int(np.isin(items, seq).sum()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(2, 3) 0"


def test_export_errors_name_the_option_and_the_fix(checkpoint, tmp_path, capsys):
    assert cli.main(["--export=onnx", f"--checkpoint={checkpoint}"]) == 2
    assert "--export needs --checkpoint=PATH and --out=DIR" in capsys.readouterr().err
    assert cli.main(["--export=onnx", f"--checkpoint={tmp_path / 'none.pth'}", f"--out={tmp_path}"]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert cli.main(["--export=onnx", f"--checkpoint={checkpoint}", f"--out={tmp_path}", "--topk=100000"]) == 2
    assert "--topk=100000" in capsys.readouterr().err
    assert cli.main(["--model=SASRec", f"--checkpoint={checkpoint}"]) == 2
    assert "--checkpoint is read by --recommend, --explain and --export" in capsys.readouterr().err
    assert cli.main(["--export=onnx", f"--checkpoint={checkpoint}", f"--out={tmp_path / 'cli'}", "--topk=4"]) == 0
    assert "model.onnx" in capsys.readouterr().out and (tmp_path / "cli" / "model.onnx").stat().st_size > 1000
