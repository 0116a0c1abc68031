"""Why these items (``--explain``): per-modality parts of each score, the ICA weights over the
history, graph neighbours, the picture, and the errors, for a trained checkpoint."""

import numpy as np
import pytest
from PIL import Image

from helpers import MM_SLICE, fast_options
from recbole_mdsrec.cli import run as cli
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.training import runner
from recbole_mdsrec.training.explain import Explainer, draw_explanation, format_explanation
from recbole_mdsrec.training.recommend import Recommender

pytestmark = pytest.mark.shared_data


def _checkpoint(model, mm_slice, folder):
    options = fast_options(mm_slice, folder, modalities=["image", "text"], train_batch_size=512, seed=4, epochs=1)
    return runner.run(model, MM_SLICE, config_dict=options).checkpoint


@pytest.fixture(scope="module")
def trained(mm_slice, tmp_path_factory):
    checkpoint = _checkpoint("MDSRec", mm_slice, tmp_path_factory.mktemp("explain"))
    return checkpoint, Recommender(checkpoint)


@pytest.fixture(scope="module")
def mdsrec(trained):
    return trained[1]


def test_parts_add_up_to_the_score_and_attention_sums_to_one(mdsrec):
    explanation = Explainer(mdsrec).explain("7", topk=10)
    assert [i.rank for i in explanation.items] == list(range(1, 11))
    recommended = [i.item for i in explanation.items]
    assert recommended == [r.item for r in mdsrec.recommend(mdsrec.user_history("7"), 10)]
    for item in explanation.items:
        assert set(item.terms) == {"image", "text"}
        assert sum(item.terms.values()) == pytest.approx(item.score, abs=1e-4)
        assert set(item.neighbours) == {"image", "text"} and all(len(v) == 5 for v in item.neighbours.values())
        assert item.item not in item.neighbours["text"]
    length = min(len(mdsrec.user_history("7")), mdsrec.config["MAX_ITEM_LIST_LENGTH"])
    assert len(explanation.history) == length
    for weights in explanation.attention.values():
        assert len(weights) == length and sum(weights) == pytest.approx(1.0, abs=1e-5) and min(weights) >= 0
    assert explanation.attention["image"] != explanation.attention["text"]  # each modality weighs its own way
    text = format_explanation(explanation)
    assert "graph neighbours" in text and "interest-centralized read-out over the history" in text


def test_the_picture_has_thumbnails_attention_and_score_panels(mdsrec, shared_root, tmp_path):
    explanation = Explainer(mdsrec).explain("7", topk=5)
    posters = shared_root / "raw" / "ml-100k" / "posters"
    images = {token: posters / f"{token}.jpg" for token in explanation.history}
    picture = draw_explanation(explanation, tmp_path / "why.png", images)
    assert picture.thumbnails == sum(p.is_file() for p in images.values()) > 0
    assert picture.panels[0].startswith("Interest-centralized attention") and "each term's part of the score" in picture.panels[1]
    with Image.open(picture.path) as png:
        pixels = np.asarray(png.convert("L"))
    assert png.size[0] > 800 and pixels.std() > 10  # drawn, not blank


def test_a_model_without_parts_is_explained_by_its_score(mm_slice, tmp_path):
    recommender = Recommender(_checkpoint("SASRec", mm_slice, tmp_path))
    explanation = Explainer(recommender).explain("7", topk=3)
    assert all(list(i.terms) == ["score"] and i.terms["score"] == pytest.approx(i.score) for i in explanation.items)
    assert explanation.attention == {} and "exposes no attention" in format_explanation(explanation)


def test_explain_command_and_its_errors(trained, tmp_path, capsys):
    path, mdsrec = trained
    picture = tmp_path / "u7.png"
    assert cli.main(["--explain", f"--checkpoint={path}", "--user=7", "--topk=3", f"--picture={picture}"]) == 0
    out = capsys.readouterr().out
    assert "Top 3 items for user 7 by MDSRec" in out and picture.stat().st_size > 10_000
    assert cli.main(["--explain", f"--checkpoint={path}", "--user=no-such-user"]) == 2
    assert "User 'no-such-user' (option --user) is not in dataset" in capsys.readouterr().err
    assert cli.main(["--explain", f"--checkpoint={path}", "--user=7", "--dataset=hm"]) == 2
    assert "hm" in capsys.readouterr().err
    assert cli.main(["--explain", f"--checkpoint={path}"]) == 2
    assert "--explain needs --checkpoint=PATH and --user=TOKEN" in capsys.readouterr().err
    with pytest.raises(DataError):
        mdsrec.user_history("no-such-user")
