"""Data preparation on the real raw data: readers, k-core, encoders vs reference, cache, CLI.

Everything runs on small slices of the real datasets so the file stays fast on 2 cores.
"""

import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from helpers import read_hm_slice
from recbole_mdsrec.data import locate, prepare
from recbole_mdsrec.data.arrays import read_feature_file
from recbole_mdsrec.data.encoders import ArrayEncoder, CachedEncoder, ImageEncoder, TextEncoder
from recbole_mdsrec.data.feature_store import feature_path, load_modal_features
from recbole_mdsrec.data.prepare import prepare_dataset
from recbole_mdsrec.data.raw import kcore_filter
from recbole_mdsrec.data.readers import read_hm, read_movielens_100k
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.cli.prepare import main

from recbole_mdsrec import roots

REPO = Path(__file__).resolve().parents[1]
RAW, REFERENCE = roots.raw_root(), roots.shared_root() / "reference" / "ml-100k-mm"
pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def ml():
    return read_movielens_100k(RAW / "ml-100k")


@pytest.fixture(scope="module")
def hm():
    return read_hm(RAW / "hm")


@pytest.fixture(scope="module")
def text_encoder():
    return TextEncoder(progress=False)


@pytest.fixture(scope="module")
def image_encoder():
    return ImageEncoder(progress=False)


def cosine(a, b):
    return (a * b).sum(1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)


def reference_rows(modality, tokens):
    name = {"text": "text_feat.npy", "image": "image_feat.npy"}[modality]
    return np.load(REFERENCE / name, mmap_mode="r")[np.asarray(tokens, dtype=int) - 1]


# ---------------------------------------------------------------- readers and k-core


def test_ml_keeps_every_rating_in_stable_time_order(ml):
    raw = pd.read_csv(RAW / "ml-100k" / "u.data", sep="\t", header=None, names=["u", "i", "r", "t"])
    raw["line"] = np.arange(len(raw))
    expected = raw.sort_values(["u", "t", "line"])  # ties broken by file order, explicitly
    inter = ml.interactions
    assert len(inter) == 100_000
    assert list(inter.columns) == ["user_id", "item_id", "rating", "timestamp"]
    np.testing.assert_array_equal(inter["user_id"].to_numpy(), expected["u"].astype(str).to_numpy())
    np.testing.assert_array_equal(inter["item_id"].to_numpy(), expected["i"].astype(str).to_numpy())
    np.testing.assert_array_equal(inter["timestamp"].to_numpy(), expected["t"].to_numpy())
    # the check means something only because ties are common
    assert raw.duplicated(["u", "t"]).sum() > 40_000


def test_kcore_reaches_a_fixed_point(ml, hm):
    for inter in (ml.interactions, hm.interactions):
        core = kcore_filter(inter, 5)
        assert core["user_id"].value_counts().min() >= 5
        assert core["item_id"].value_counts().min() >= 5
        assert len(kcore_filter(core, 5)) == len(core)
    # the figures measured in ../shared/datasets/README.md for H&M at product level
    core = kcore_filter(hm.interactions, 5)
    assert (len(core), core["user_id"].nunique(), core["item_id"].nunique()) == (15_846, 713, 1_471)
    # filtering only drops rows: the order of the rest is untouched
    inter, core = ml.interactions, kcore_filter(ml.interactions, 5)
    kept = inter["user_id"].isin(core["user_id"]) & inter["item_id"].isin(core["item_id"])
    pd.testing.assert_frame_equal(core, inter[kept.to_numpy()].reset_index(drop=True))


def test_hm_products_keep_leading_zeros(hm):
    tokens = hm.items.index.to_series()
    assert tokens.str.fullmatch(r"\d{7}").all()
    assert tokens.str.startswith("0").all()
    assert set(hm.interactions["item_id"]) == set(tokens)
    articles = pd.read_csv(RAW / "hm" / "transactions.csv", dtype=str, usecols=["article_id"])["article_id"]
    assert set(articles.str[:7]) == set(tokens)
    assert hm.modal_inputs["text"].isna().sum() > 0  # some products have no text at all


# ---------------------------------------------------------------- encoders vs reference


def test_text_matches_reference(ml, text_encoder):
    texts = ml.modal_inputs["text"]
    empty = pd.read_csv(RAW / "ml-100k" / "overviews.csv", dtype=str, keep_default_na=False).query("overview == ''")
    tokens = [*texts.index[::60][:27], *empty["movie_id"][:3]]  # 30 items, 3 without overview
    encoded = text_encoder.encode(texts[tokens].tolist())
    assert encoded.shape == (30, 384) and encoded.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(encoded, axis=1), 1.0, atol=1e-5)
    # measured: cosine >= 0.9999999 on all 1349 items of the 5-core (max abs difference 2.3e-7)
    assert cosine(encoded, reference_rows("text", tokens)).min() >= 0.999


def test_posters_match_reference(ml, image_encoder):
    posters = ml.modal_inputs["image"].dropna()
    tokens = posters.index[::150][:10]
    encoded = image_encoder.encode(posters[tokens].tolist())
    assert encoded.shape == (10, 1280) and encoded.dtype == np.float32
    # measured: cosine >= 0.9999998 on all 1342 posters of the 5-core, max abs difference 7.6e-6
    assert cosine(encoded, reference_rows("image", tokens)).min() >= 0.9999
    np.testing.assert_allclose(encoded, reference_rows("image", tokens), atol=1e-4)


def test_cache_skips_the_model_on_a_second_call(ml, text_encoder, image_encoder, tmp_path, monkeypatch):
    texts = ml.modal_inputs["text"].iloc[:5].tolist()
    posters = ml.modal_inputs["image"].dropna().iloc[:3].tolist()
    first_text = CachedEncoder(text_encoder, tmp_path).encode(texts)
    first_image = CachedEncoder(image_encoder, tmp_path).encode(posters)

    def broken(*args, **kwargs):
        raise AssertionError("the model ran although every input was cached")

    monkeypatch.setattr(text_encoder._load(), "forward", broken)
    monkeypatch.setattr(image_encoder._load(), "extract_features", broken)
    again_text, again_image = CachedEncoder(text_encoder, tmp_path), CachedEncoder(image_encoder, tmp_path)
    np.testing.assert_array_equal(again_text.encode(texts[::-1] + texts[:1]), np.concatenate([first_text[::-1], first_text[:1]]))
    np.testing.assert_array_equal(again_image.encode(posters), first_image)
    assert (again_text.hits, again_text.encoded, again_image.encoded) == (6, 0, 0)
    with pytest.raises(AssertionError, match="model ran"):  # a new input does reach the model
        again_text.encode([texts[0] + " (director's cut)"])


# ---------------------------------------------------------------- whole preparation


@pytest.fixture(scope="module")
def prepared_ml(tmp_path_factory):
    """ml-100k-mm prepared with the reference rows as precomputed features (no encoding)."""
    tmp = tmp_path_factory.mktemp("ml")
    tokens = tmp / "tokens.txt"
    tokens.write_text("\n".join(str(i) for i in range(1, 1683)) + "\n")
    precomputed = {m: read_feature_file(m, REFERENCE / f"{m}_feat.npy", tokens) for m in ("text", "image")}
    summary = prepare_dataset("ml-100k-mm", RAW, tmp / "out", precomputed=precomputed, progress=False)
    return summary, tmp / "out" / "ml-100k-mm"


def test_prepare_ml_writes_recbole_files(prepared_ml, ml):
    summary, out = prepared_ml
    assert {k: summary[k] for k in ("users", "items", "interactions", "missing")} == {
        "users": 943, "items": 1349, "interactions": 99_287, "missing": {"text": 0, "image": 7}
    }
    lines = (out / "ml-100k-mm.inter").read_text().splitlines()
    assert lines[0] == "user_id:token\titem_id:token\trating:float\ttimestamp:float"
    inter = pd.read_csv(out / "ml-100k-mm.inter", sep="\t", dtype=str)
    expected = kcore_filter(ml.interactions, 5)
    np.testing.assert_array_equal(inter["item_id:token"], expected["item_id"])
    np.testing.assert_array_equal(inter["timestamp:float"].astype(int), expected["timestamp"])
    item = pd.read_csv(out / "ml-100k-mm.item", sep="\t", dtype=str, keep_default_na=False)
    assert list(item.columns) == ["item_id:token", "title:token_seq", "genre:token_seq", "release_year:token"]
    assert item.iloc[0].tolist() == ["1", "Toy Story (1995)", "Animation Children's Comedy", "1995"]
    assert set(item["item_id:token"]) == set(inter["item_id:token"])
    for modality in ("text", "image"):
        features = load_modal_features(feature_path(out, "ml-100k-mm", modality), modality)
        np.testing.assert_array_equal(features.tokens, item["item_id:token"])
        np.testing.assert_array_equal(features.features, reference_rows(modality, features.tokens))
    image = load_modal_features(feature_path(out, "ml-100k-mm", "image"), "image")
    np.testing.assert_array_equal(image.mask, np.load(REFERENCE / "image_mask.npy")[image.tokens.astype(int) - 1])


def test_prepare_ml_provenance(prepared_ml):
    _, out = prepared_ml
    provenance = json.loads((out / "ml-100k-mm.features.json").read_text())
    assert provenance["kcore"] == 5 and provenance["interactions"] == 99_287
    assert provenance["raw_source"].endswith("ml-100k")
    image = provenance["modalities"]["image"]
    assert image["encoder"] == "ArrayEncoder" and image["dim"] == 1280
    assert (image["n_items"], image["n_missing"]) == (1349, 7)
    assert len(image["sha256"]) == 64


def test_prepare_hm_masks_products_without_text(tmp_path, text_encoder, image_encoder):
    # a 20-core keeps 3 real products, 2 of them without any text: encoded for real
    encoders = {"text": text_encoder, "image": image_encoder}
    summary = prepare_dataset("hm", RAW, tmp_path, kcore=20, progress=False, encoders=encoders)
    assert (summary["users"], summary["items"], summary["missing"]) == (3, 3, {"text": 2, "image": 0})
    out = tmp_path / "hm"
    text = load_modal_features(feature_path(out, "hm", "text"), "text")
    image = load_modal_features(feature_path(out, "hm", "image"), "image")
    assert all(len(t) == 7 and t.startswith("0") for t in text.tokens)
    assert text.mask.sum() == 1
    assert not text.features[~text.mask].any()
    np.testing.assert_allclose(np.linalg.norm(text.features[text.mask], axis=1), 1.0, atol=1e-5)
    assert image.mask.all() and (np.linalg.norm(image.features, axis=1) > 1).all()
    item = pd.read_csv(out / "hm.item", sep="\t", dtype=str, keep_default_na=False).set_index("item_id:token")
    described = item.loc[text.tokens[text.mask], "prod_name:token_seq"]
    assert (described != "").all() and (item.loc[text.tokens[~text.mask], "prod_name:token_seq"] == "").all()
    provenance = json.loads((out / "hm.features.json").read_text())
    assert "first article" in provenance["modalities"]["text"]["input"]["rule"]
    assert provenance["modalities"]["image"]["cache"]["encoded"] == 3


def test_runs_started_together_prepare_a_dataset_once(tmp_path, monkeypatch):
    # A grid with --jobs=2 on a fresh clone starts two runs at once on an unprepared dataset.
    monkeypatch.setitem(prepare.DATASETS, "hm-first", prepare.DatasetSpec("hm", read_hm_slice))
    real, preparing, calls = prepare.prepare_dataset, threading.Event(), []

    def counted(name, *args, **kwargs):
        calls.append(name)
        preparing.set()
        return real(name, *args, **kwargs)

    monkeypatch.setattr(prepare, "prepare_dataset", counted)
    config = {"dataset": "hm-first", "data_path": str(tmp_path / "hm-first"), "raw_data_path": str(RAW)}
    with ThreadPoolExecutor(2) as pool:
        first = pool.submit(locate.ensure_dataset, config)
        assert preparing.wait(120)
        second = pool.submit(locate.ensure_dataset, config)  # while the first is encoding
        first.result(), second.result()
    assert calls == ["hm-first"]
    assert (tmp_path / "hm-first" / "hm-first.features.json").is_file()


# ---------------------------------------------------------------- errors a user can act on


def test_a_run_on_a_dataset_without_files_says_where_they_go(tmp_path):
    with pytest.raises(DataError) as err:
        locate.ensure_dataset({"dataset": "ml-1m", "data_path": str(tmp_path / "ml-1m"), "raw_data_path": None})
    assert str(tmp_path / "ml-1m" / "ml-1m.inter") in str(err.value) and "RecBole atomic files" in str(err.value)
    with pytest.raises(DataError) as err:
        locate.ensure_dataset({"dataset": "hm", "data_path": str(tmp_path / "hm"), "raw_data_path": str(tmp_path / "nowhere")})
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "hm") in message and "python -m recbole_mdsrec.cli.prepare hm" in message


def test_missing_raw_folder(tmp_path):
    with pytest.raises(DataError) as err:
        prepare_dataset("hm", tmp_path / "nowhere", tmp_path / "out", progress=False)
    message = str(err.value)
    assert str(tmp_path / "nowhere" / "hm") in message and "README.md" in message and "--raw_dir" in message


def test_kcore_too_strict(tmp_path):
    with pytest.raises(DataError, match=r"--kcore"):
        prepare_dataset("hm", RAW, tmp_path, kcore=1000, progress=False)
    assert not (tmp_path / "hm").exists()


def test_unknown_dataset(tmp_path):
    with pytest.raises(DataError, match="built-in ones are amazon-instruments, hm, microlens-50k, ml-100k-mm.*--from=FORMAT"):
        prepare_dataset("ml-1m", RAW, tmp_path, progress=False)


def test_precomputed_tokens_must_match(tmp_path):
    tokens = tmp_path / "tokens.txt"
    tokens.write_text("\n".join(f"movie{i}" for i in range(1, 1683)))
    encoder = ArrayEncoder(read_feature_file("text", REFERENCE / "text_feat.npy", tokens), "text")
    with pytest.raises(DataError, match="tokens file must list the dataset's item tokens"):
        encoder.inputs_for(["1", "2"])
    tokens.write_text("1\n2\n")
    with pytest.raises(DataError, match="row counts differ"):
        read_feature_file("text", REFERENCE / "text_feat.npy", tokens)


def test_cli_reports_errors_without_traceback(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "recbole_mdsrec.cli.prepare", "hm", "--raw_dir", str(tmp_path / "nowhere"), "--data_path", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and "README.md" in result.stderr


def test_cli_rejects_malformed_feature_option(tmp_path, capsys):
    assert main(["ml-100k-mm", "--data_path", str(tmp_path), "--feature", "image"]) == 2
    assert "MODALITY=FEATS.npy:TOKENS.txt" in capsys.readouterr().err
    assert main(["ml-100k-mm", "--data_path", str(tmp_path), "--feature", "image=only.npy"]) == 2
    assert "needs its tokens file" in capsys.readouterr().err
    assert main([f"--data_path={tmp_path}", "--feature=image=a.npy:t.txt"]) == 2
    assert "name exactly one" in capsys.readouterr().err
