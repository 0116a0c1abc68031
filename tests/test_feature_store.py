"""The per-modality feature file format: round trip, every validation error, alignment.

Rows come from the reference EfficientNet features of real MovieLens posters; errors are
provoked by corrupting copies in tmp_path.
"""


import numpy as np
import pytest

from recbole_mdsrec.data.feature_store import (
    ModalFeatures,
    align_to_item_ids,
    feature_path,
    load_modal_features,
    save_modal_features,
)
from recbole_mdsrec import roots
from recbole_mdsrec.errors import DataError

REFERENCE = roots.shared_root() / "reference" / "ml-100k-mm"
pytestmark = pytest.mark.shared_data
NAME = "ml-100k-mm"
FIRST, LAST = 321, 400  # items 321..400: 78 posters, items 330 and 387 have none


@pytest.fixture(scope="module")
def rows():
    """tokens, features, mask of 80 real items (row r of the reference is item r+1)."""
    features = np.array(np.load(REFERENCE / "image_feat.npy", mmap_mode="r")[FIRST - 1 : LAST])
    mask = np.load(REFERENCE / "image_mask.npy")[FIRST - 1 : LAST]
    tokens = np.arange(FIRST, LAST + 1).astype(str)
    assert (~mask).sum() == 2
    return tokens, features, mask


@pytest.fixture
def path(tmp_path):
    return feature_path(tmp_path, NAME, "image")


def write_raw(path, **arrays):
    """Write an npz as some other tool would, bypassing validation."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        np.savez(f, **arrays)


def test_feature_path_accepts_root_or_dataset_folder(tmp_path):
    expected = tmp_path / NAME / f"{NAME}.text.npz"
    assert feature_path(tmp_path, NAME, "text") == expected
    assert feature_path(tmp_path / NAME, NAME, "text") == expected


def test_round_trip(rows, path):
    tokens, features, mask = rows
    save_modal_features(path, tokens.tolist(), features.astype(np.float64), mask)
    loaded = load_modal_features(path, "image")
    assert isinstance(loaded, ModalFeatures)
    assert loaded.modality == "image" and loaded.path == path and loaded.dim == 1280
    assert loaded.features.dtype == np.float32 and loaded.mask.dtype == bool
    np.testing.assert_array_equal(loaded.tokens, tokens)
    np.testing.assert_array_equal(loaded.features, features)
    np.testing.assert_array_equal(loaded.mask, mask)
    with np.load(path, allow_pickle=False) as npz:  # readable by anyone, no pickle
        assert sorted(npz.files) == ["features", "mask", "tokens"]
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temp file left


def test_save_replaces_and_refuses_bad_rows(rows, path):
    tokens, features, mask = rows
    save_modal_features(path, tokens, features, mask)
    save_modal_features(path, tokens[:10], features[:10], mask[:10])
    assert load_modal_features(path, "image").tokens.size == 10
    bad = features.copy()
    bad[0, 0] = np.nan
    with pytest.raises(DataError, match="NaN"):
        save_modal_features(path, tokens, bad, mask)
    assert load_modal_features(path, "image").tokens.size == 10  # old file intact
    assert [p.name for p in path.parent.iterdir()] == [path.name]


def test_masked_in_zero_row_is_fine(rows, path):
    tokens, features, mask = rows
    features = features.copy()
    features[0] = 0.0  # an encoder may legitimately output zeros
    save_modal_features(path, tokens, features, mask)
    assert load_modal_features(path, "image").mask[0]


def test_missing_file_says_how_to_create_it(path):
    with pytest.raises(DataError) as err:
        load_modal_features(path, "image")
    message = str(err.value)
    assert str(path) in message and "does not exist" in message
    assert f"python -m recbole_mdsrec.cli.prepare {NAME}" in message


def _corruptions(tokens, features, mask):
    """name -> (arrays as some broken tool wrote them, words the message must contain)."""
    nan = features.copy()
    nan[[3, 7]] = np.nan
    inf = features.copy()
    inf[5, 9] = np.inf
    leaked = features.copy()
    leaked[~mask] = 0.5
    dup = tokens.copy()
    dup[4] = dup[2]
    return {
        "missing array": (dict(tokens=tokens, features=features), ["lacks", "mask"]),
        "row count": (dict(tokens=tokens, features=features[:-1], mask=mask), ["row counts differ", "79 feature rows"]),
        "duplicate tokens": (dict(tokens=dup, features=features, mask=mask), ["more than once", repr(str(tokens[2]))]),
        "int features": (dict(tokens=tokens, features=(features * 100).astype(np.int32), mask=mask), ["int32", "floating"]),
        "uint8 mask": (dict(tokens=tokens, features=features, mask=mask.astype(np.uint8)), ["uint8", "bool"]),
        "1-d features": (dict(tokens=tokens, features=features[:, 0], mask=mask), ["'features' has 1 dimension"]),
        "3-d features": (dict(tokens=tokens, features=features[:, :, None], mask=mask), ["'features' has 3 dimension"]),
        "2-d mask": (dict(tokens=tokens, features=features, mask=mask[:, None]), ["'mask' has 2 dimension"]),
        "numeric tokens": (dict(tokens=tokens.astype(int), features=features, mask=mask), ["'tokens' has dtype int"]),
        "NaN rows": (dict(tokens=tokens, features=nan, mask=mask), ["2 row(s)", "NaN", "'324'", "'328'"]),
        "inf row": (dict(tokens=tokens, features=inf, mask=mask), ["infinite", repr(str(tokens[5]))]),
        "masked-out row not zero": (dict(tokens=tokens, features=leaked, mask=mask), ["masked out", "'330'", "'387'"]),
        "object tokens": (dict(tokens=tokens.astype(object), features=features, mask=mask), ["pickle", "dtype=str"]),
    }


CASES = ("missing array", "row count", "duplicate tokens", "int features", "uint8 mask", "1-d features",
         "3-d features", "2-d mask", "numeric tokens", "NaN rows", "inf row", "masked-out row not zero", "object tokens")


def test_cases_cover_every_corruption(rows):
    assert set(_corruptions(*rows)) == set(CASES)


@pytest.mark.parametrize("case", CASES)
def test_every_corruption_is_a_clear_data_error(rows, path, case):
    arrays, words = _corruptions(*rows)[case]
    write_raw(path, **arrays)
    with pytest.raises(DataError) as err:
        load_modal_features(path, "image")
    message = str(err.value)
    assert str(path) in message, message
    assert f"python -m recbole_mdsrec.cli.prepare {NAME}" in message, message
    assert "\n" not in message
    for word in words:
        assert word in message, f"{word!r} not in: {message}"


def test_not_an_npz(path):
    path.parent.mkdir(parents=True)
    path.write_text("tokens,features\n")
    with pytest.raises(DataError, match="not a readable .npz"):
        load_modal_features(path, "image")


def test_align_to_item_ids_follows_recbole_ids(rows, path):
    tokens, features, mask = rows
    save_modal_features(path, tokens, features, mask)
    modal = load_modal_features(path, "image")
    rng = np.random.default_rng(0)
    kept = rng.permutation(tokens)[:50]  # RecBole's id order, some items filtered out
    kept = np.union1d(kept, ["330", "387"])[::-1]  # make sure both poster-less items are in
    id_to_token = np.concatenate([["[PAD]"], kept])

    aligned, aligned_mask = align_to_item_ids(modal, id_to_token, NAME)

    assert aligned.shape == (len(id_to_token), 1280) and aligned.dtype == np.float32
    assert not aligned_mask[0] and not aligned[0].any()
    position = {t: i for i, t in enumerate(tokens)}
    for item_id, token in enumerate(id_to_token[1:], start=1):
        np.testing.assert_array_equal(aligned[item_id], features[position[token]])
        assert aligned_mask[item_id] == mask[position[token]]
    assert aligned_mask.sum() == len(kept) - 2


def test_align_reports_items_without_rows(rows, path):
    tokens, features, mask = rows
    save_modal_features(path, tokens[10:], features[10:], mask[10:])
    modal = load_modal_features(path, "image")
    with pytest.raises(DataError) as err:
        align_to_item_ids(modal, ["[PAD]", *tokens], NAME)
    message = str(err.value)
    assert "no row for 10 of the 80 items" in message and "'321'" in message
    assert str(path) in message and f"python -m recbole_mdsrec.cli.prepare {NAME}" in message


def test_align_needs_padding_first(rows, path):
    save_modal_features(path, *rows)
    with pytest.raises(ValueError, match="PAD"):
        align_to_item_ids(load_modal_features(path, "image"), list(rows[0]), NAME)
