"""feature_normalization on the real poster and plot features: what each mode does to the
rows, that missing rows stay zero, that the dataset hook applies it, and bad values."""

import numpy as np
import pytest

from helpers import MM_SLICE, build_model
from recbole_mdsrec.data.normalize import normalize_features
from recbole_mdsrec.errors import ConfigError

pytestmark = pytest.mark.shared_data


@pytest.fixture(scope="module")
def posters(shared_root):
    reference = shared_root / "reference" / "ml-100k-mm"
    features = np.load(reference / "image_feat.npy").astype(np.float32)
    mask = np.load(reference / "image_mask.npy")
    assert not mask.all(), "the slice should hold movies without a poster"
    return features, mask


def test_none_keeps_the_features(posters):
    features, mask = posters
    out = normalize_features(features, mask, "none")
    np.testing.assert_array_equal(out, features)
    assert out is not features


def test_l2_gives_unit_rows_and_keeps_cosines(posters):
    features, mask = posters
    out = normalize_features(features, mask, "l2")
    np.testing.assert_allclose(np.linalg.norm(out[mask], axis=1), 1.0, atol=1e-5)
    assert not out[~mask].any()
    kept = features[mask]
    cosine = kept @ kept.T / np.outer(np.linalg.norm(kept, axis=1), np.linalg.norm(kept, axis=1))
    np.testing.assert_allclose(out[mask] @ out[mask].T, cosine, atol=1e-5)
    assert np.linalg.norm(features[mask], axis=1).mean() > 10  # the raw posters are far from unit scale


def test_center_l2_removes_the_common_direction(posters):
    features, mask = posters
    out = normalize_features(features, mask, "center_l2")
    np.testing.assert_allclose(np.linalg.norm(out[mask], axis=1), 1.0, atol=1e-5)
    assert not out[~mask].any()
    # Raw poster vectors are non-negative, so every pair is alike; centred, they are not.
    raw = normalize_features(features, mask, "l2")[mask]
    assert (raw @ raw.T).min() > 0 and (raw @ raw.T).mean() > 0.4
    centred = out[mask]
    assert np.abs(centred.mean(axis=0)).max() < np.abs(raw.mean(axis=0)).max() / 20
    assert (centred @ centred.T).min() < 0 and abs((centred @ centred.T).mean()) < 0.01


def test_unknown_mode_names_the_option(posters):
    with pytest.raises(ConfigError, match="feature_normalization must be one of none, l2, center_l2"):
        normalize_features(*posters, "unit")


def test_config_refuses_an_unknown_mode_before_any_data_is_read(tmp_path):
    from recbole_mdsrec.config import Config

    # No dataset exists at this path: the option is checked first.
    with pytest.raises(ConfigError, match="feature_normalization must be one of"):
        Config("SASRecF", "hm", config_dict={"data_path": str(tmp_path), "gpu_id": "",
                                             "feature_normalization": "unit"})


def test_dataset_hook_applies_it_to_every_modality(mm_config):
    _, (train, _, _), _ = build_model("SASRecF", {**mm_config, "feature_normalization": "l2"}, MM_SLICE)
    dataset = train.dataset
    for modality in ("image", "text"):
        features, mask = dataset.modal_features[modality].numpy(), dataset.modal_masks[modality].numpy()
        np.testing.assert_allclose(np.linalg.norm(features[mask], axis=1), 1.0, atol=1e-5)
        assert not features[0].any() and not features[~mask].any()
