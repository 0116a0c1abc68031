"""Any dataset in: each file format read back from real data written in that format here,
the published splits kept, code features, and every bad input the importer refuses."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from helpers import read_ml100k_ratings
from recbole_mdsrec import roots
from recbole_mdsrec.cli.prepare import main
from recbole_mdsrec.data.codes import codes_as_features
from recbole_mdsrec.data.feature_store import feature_path, load_modal_features
from recbole_mdsrec.data.importer import CodeOption, FeatureOption, ImportSpec
from recbole_mdsrec.data.prepare import prepare_dataset, prepare_source
from recbole_mdsrec.errors import DataError

pytestmark = pytest.mark.shared_data

RAW = roots.raw_root()
REFERENCE = roots.shared_root() / "reference" / "ml-100k-mm"
INSTRUMENTS = RAW / "amazon-instruments"
USERS = 150  # the first users of MovieLens-100K: ~15k interactions, ~1,200 movies


@pytest.fixture(scope="module")
def ratings() -> pd.DataFrame:
    """The first users' real ratings in time order (stable: ties in file order)."""
    raw = read_ml100k_ratings(RAW / "ml-100k")
    raw = raw[raw.user_id <= USERS]
    return raw.iloc[np.lexsort((raw.timestamp.to_numpy(), raw.user_id.to_numpy()))].reset_index(drop=True)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    """The reference features, row r = movie r + 1."""
    return {m: np.load(REFERENCE / f"{m}_feat.npy") for m in ("text", "image")}


@pytest.fixture(scope="module")
def movies(ratings) -> np.ndarray:
    """The movie ids the slice's users rated, ascending."""
    return np.unique(ratings["item_id"].to_numpy())


@pytest.fixture(scope="module")
def movie_features(tmp_path_factory, reference, movies) -> tuple:
    """The reference rows of the rated movies as --feature files: FEATS.npy and its tokens."""
    folder = tmp_path_factory.mktemp("features")
    tokens = folder / "tokens.txt"
    tokens.write_text("\n".join(map(str, movies)) + "\n")
    for modality, rows in reference.items():
        np.save(folder / f"{modality}.npy", rows[movies - 1])
    return tuple(FeatureOption(m, folder / f"{m}.npy", tokens) for m in ("image", "text"))


def features_by_token(out, name: str, modality: str):
    stored = load_modal_features(feature_path(out, name, modality), modality)
    return dict(zip(stored.tokens, stored.features)), stored


def prepared_inter(out, name: str) -> pd.DataFrame:
    return pd.read_csv(out / name / f"{name}.inter", sep="\t", dtype=str)


def last_two(inter: pd.DataFrame) -> dict[str, tuple[str, str]]:
    grouped = inter.groupby("user_id:token", sort=False)["item_id:token"]
    return {user: tuple(items.iloc[-2:]) for user, items in grouped}


# --------------------------------------------------------------------- each format


def test_own_tables_by_named_columns_and_precomputed_features(tmp_path, ratings, movie_features, reference):
    shuffled = ratings.sample(frac=1.0, random_state=0)  # time order comes from the timestamp column
    shuffled.rename(columns={"user_id": "uid", "item_id": "movie", "timestamp": "ts", "rating": "stars"}).to_csv(
        tmp_path / "inter.csv", index=False)
    spec = ImportSpec("own", "table", interactions=tmp_path / "inter.csv", user="uid", item="movie", time="ts",
                      rating="stars", features=movie_features)
    summary = prepare_source(spec, tmp_path / "out", progress=False)
    inter = prepared_inter(tmp_path / "out", "own")
    assert summary["users"] == USERS and list(inter.columns)[:2] == ["user_id:token", "item_id:token"]
    times = inter["timestamp:float"].astype(float).to_numpy()
    users = inter["user_id:token"].to_numpy()
    assert all((np.diff(times[users == u]) >= 0).all() for u in np.unique(users))
    for modality in ("image", "text"):
        rows, _ = features_by_token(tmp_path / "out", "own", modality)
        assert set(rows) == set(inter["item_id:token"])
        for token, row in rows.items():  # the same item gets the same feature row as the direct path
            np.testing.assert_array_equal(row, reference[modality][int(token) - 1])
    _, image = features_by_token(tmp_path / "out", "own", "image")
    assert (~image.mask).sum() >= 1  # movies without a poster lack the image modality


def test_file_order_and_text_columns_of_an_item_table(tmp_path, ratings, movie_features):
    ratings[["user_id", "item_id"]].to_csv(tmp_path / "inter.tsv", sep="\t", index=False)
    overviews = pd.read_csv(RAW / "ml-100k" / "overviews.csv", dtype=str, keep_default_na=False)
    overviews.rename(columns={"movie_id": "item_id"}).to_parquet(tmp_path / "items.parquet")
    spec = ImportSpec("ordered", "table", interactions=tmp_path / "inter.tsv", order="file",
                      items=tmp_path / "items.parquet", text=("title", "overview"), features=movie_features[:1],
                      allow_extra=True, kcore=1)  # the item table holds the whole catalogue
    from recbole_mdsrec.data.importer import read_source

    raw = read_source(spec)
    assert raw.interactions["item_id"].tolist() == ratings["item_id"].astype(str).tolist()  # the file's order, kept
    text = raw.modal_inputs["text"]
    toy = overviews.set_index("movie_id").loc["1"]
    assert text["1"] == f"{toy.title}. {toy.overview}"
    assert len(raw.items) == ratings["item_id"].nunique()  # the catalogue's other movies dropped (--allow_extra)


def test_recbole_atomic_files(tmp_path, ratings, movie_features, reference):
    folder = tmp_path / "atomic"
    folder.mkdir()
    ratings.to_csv(folder / "ml.inter", sep="\t", index=False,
                   header=["user_id:token", "item_id:token", "rating:float", "timestamp:float"])
    summary = prepare_source(ImportSpec("atomic", "recbole", path=folder, features=movie_features), tmp_path / "out",
                             progress=False)
    assert summary["users"] == USERS
    rows, _ = features_by_token(tmp_path / "out", "atomic", "text")
    token = next(iter(rows))
    np.testing.assert_array_equal(rows[token], reference["text"][int(token) - 1])


def test_mmrec_files_are_resplit_by_time(tmp_path, ratings, reference):
    folder = tmp_path / "mmrec"
    folder.mkdir()
    mm = pd.DataFrame({"userID": ratings.user_id - 1, "itemID": ratings.item_id - 1, "rating": ratings.rating,
                       "timestamp": ratings.timestamp, "x_label": np.random.default_rng(0).integers(0, 3, len(ratings))})
    mm.sample(frac=1.0, random_state=1).to_csv(folder / "ml.inter", sep="\t", index=False)
    for modality, rows in reference.items():
        np.save(folder / f"{modality}_feat.npy", rows)  # row r = itemID r
    prepare_source(ImportSpec("mm", "mmrec", path=folder), tmp_path / "out", progress=False)
    inter = prepared_inter(tmp_path / "out", "mm")
    assert inter["user_id:token"].nunique() == USERS and set(inter["item_id:token"]) <= {str(i) for i in range(1682)}
    # ordered by time again (ties in the shuffled file's order), whatever x_label said
    times = inter.groupby("user_id:token")["timestamp:float"].apply(lambda t: t.astype(float).is_monotonic_increasing)
    assert times.all()
    for modality in reference:
        rows, _ = features_by_token(tmp_path / "out", "mm", modality)
        for token, row in rows.items():
            np.testing.assert_array_equal(row, reference[modality][int(token)])


def write_benchmark(folder, stem: str, sequences: dict[str, list[str]], cap: int = 50) -> None:
    """RecBole benchmark files: every prefix for training (longest first), then valid, test."""
    header = "user_id:token\titem_id_list:token_seq\titem_id:token\n"
    parts = {"train": [], "valid": [], "test": []}
    for user, items in sequences.items():
        parts["test"].append((user, items[:-1], items[-1]))
        parts["valid"].append((user, items[:-2], items[-2]))
        parts["train"] += [(user, items[:p], items[p]) for p in range(len(items) - 3, 0, -1)]
    for part, rows in parts.items():
        (folder / f"{stem}.{part}.inter").write_text(
            header + "".join(f"{u}\t{' '.join(h[-cap:])}\t{t}\n" for u, h, t in rows))


@pytest.fixture
def ml_sequences(ratings) -> dict[str, list[str]]:
    return {str(u): [str(i) for i in s] for u, s in ratings.groupby("user_id", sort=False)["item_id"]}


def test_unisrec_files_keep_their_split_and_rows(tmp_path, ml_sequences, reference):
    folder = tmp_path / "unisrec"
    folder.mkdir()
    write_benchmark(folder, "ml", ml_sequences, cap=20)
    for modality, suffix in (("text", "feat1CLS"), ("image", "feat3CLS")):  # index = movie id: row 0 unused
        np.concatenate([np.zeros((1, reference[modality].shape[1]), np.float32), reference[modality]]).tofile(
            folder / f"ml.{suffix}")
    (folder / "ml.item2index").write_text("".join(f"movie{i}\t{i}\n" for i in range(1, 1683)))
    prepare_source(ImportSpec("uni", "unisrec", path=folder), tmp_path / "out", progress=False)
    inter = prepared_inter(tmp_path / "out", "uni")
    assert last_two(inter) == {u: (s[-2], s[-1]) for u, s in ml_sequences.items()}
    assert len(inter) == sum(map(len, ml_sequences.values()))  # kept exactly: no k-core, no row lost
    for modality in reference:
        rows, _ = features_by_token(tmp_path / "out", "uni", modality)
        for token, row in rows.items():
            np.testing.assert_array_equal(row, reference[modality][int(token) - 1])
    item = pd.read_csv(tmp_path / "out" / "uni" / "uni.item", sep="\t", dtype=str)
    assert (item["original_id:token"] == "movie" + item["item_id:token"]).all()


@pytest.fixture(scope="module")
def instruments(tmp_path_factory):
    """amazon-instruments, built in: MQL4GRec's sequences and codes, the published split."""
    out = tmp_path_factory.mktemp("instruments")
    return prepare_dataset("amazon-instruments", RAW, out, progress=False), out


def published_targets(part: str) -> dict[str, str]:
    table = pd.read_csv(INSTRUMENTS / f"Instruments.{part}.inter", sep="\t", dtype=str)
    return dict(zip(table["user_id:token"], table["item_id:token"]))


def test_amazon_instruments_keeps_the_published_split_bit_for_bit(instruments, mm_config):
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.registry import create_dataset

    summary, out = instruments
    assert (summary["users"], summary["items"], summary["interactions"]) == (17_112, 6_250, 136_226)
    assert summary["missing"] == {"image": 0, "text": 0}
    config = Config("SASRec", "amazon-instruments", config_dict={"data_path": str(out), "state": "WARNING", "gpu_id": ""})
    dataset = create_dataset(config)
    _, valid, test = dataset.build()  # RecBole's own leave-one-out split of the prepared files
    for split, part in ((valid, "valid"), (test, "test")):
        users = split.field2id_token["user_id"][split.inter_feat["user_id"].numpy()]
        items = split.field2id_token["item_id"][split.inter_feat["item_id"].numpy()]
        assert dict(zip(users, items)) == published_targets(part)


def test_codes_become_one_hot_per_level(instruments):
    _, out = instruments
    rows, stored = features_by_token(out, "amazon-instruments", "text")
    codes = json.loads((INSTRUMENTS / "Instruments.index_lemb.json").read_text())
    assert stored.dim == 4 * 256 and stored.mask.all()
    for token in ("0", "1", "6249"):
        row = rows[token]
        expected = [level * 256 + int(code.split("_")[1].rstrip(">")) for level, code in enumerate(codes[token])]
        assert np.flatnonzero(row).tolist() == expected and row.sum() == 4
    # cosine = share of levels with the same code
    a, b = rows["1"], rows["2"]
    shared = sum(x == y for x, y in zip(codes["1"], codes["2"]))
    assert np.dot(a, b) / np.linalg.norm(a) / np.linalg.norm(b) == pytest.approx(shared / 4)
    provenance = json.loads((out / "amazon-instruments" / "amazon-instruments.features.json").read_text())
    assert provenance["modalities"]["text"]["distinct_tuples"] == 5_988


def test_the_benchmark_files_with_codes_give_the_same_dataset(instruments, tmp_path):
    _, out = instruments
    spec = ImportSpec("benchmark", "recbole-benchmark", path=INSTRUMENTS, stem="Instruments",
                      codes=(CodeOption("image", INSTRUMENTS / "Instruments.index_vitemb.json", 256),
                             CodeOption("text", INSTRUMENTS / "Instruments.index_lemb.json", 256)))
    prepare_source(spec, tmp_path, progress=False)
    ours, builtin = prepared_inter(tmp_path, "benchmark"), prepared_inter(out, "amazon-instruments")
    pd.testing.assert_frame_equal(ours, builtin)
    for modality in ("image", "text"):
        np.testing.assert_array_equal(features_by_token(tmp_path, "benchmark", modality)[1].features,
                                      features_by_token(out, "amazon-instruments", modality)[1].features)


MICROLENS_USERS = 40


@pytest.fixture(scope="module")
def microlens_slice(tmp_path_factory):
    """The first MicroLens users' pairs and every title, in the MicroLens format; prepared (kcore 1)."""
    folder = tmp_path_factory.mktemp("microlens")
    lines = (RAW / "microlens-50k" / "MicroLens-50k_pairs.tsv").read_text().splitlines()[:MICROLENS_USERS]
    (folder / "ML_pairs.tsv").write_text("\n".join(lines) + "\n")
    titles = pd.read_csv(RAW / "microlens-50k" / "MicroLens-50k_titles.csv", dtype=str)
    titles.to_csv(folder / "ML_titles.csv", index=False)
    summary = prepare_source(ImportSpec("ml40", "microlens", path=folder, kcore=1), folder / "out", progress=False)
    return summary, folder / "out", lines, titles


def test_microlens_keeps_each_users_order(microlens_slice):
    summary, out, lines, titles = microlens_slice
    inter = prepared_inter(out, "ml40")
    for line in lines:
        user, items = line.split("\t")
        assert inter.loc[inter["user_id:token"] == user, "item_id:token"].tolist() == items.split()
    assert summary["missing"] == {"text": 0} and summary["users"] == MICROLENS_USERS
    item = pd.read_csv(out / "ml40" / "ml40.item", sep="\t", dtype=str, keep_default_na=False).set_index("item_id:token")
    assert item.loc["1958", "title:token_seq"].split()[:3] == titles.set_index("item").loc["1958", "title"].split()[:3]


@pytest.fixture(scope="module")
def instruments_slice(tmp_path_factory):
    """The first 300 users of amazon-instruments in MQL4GRec's format (sequences and both code
    files, no benchmark files), prepared."""
    folder = tmp_path_factory.mktemp("instruments")
    sequences = json.loads((INSTRUMENTS / "Instruments.inter.json").read_text())
    kept = dict(list(sequences.items())[:300])
    (folder / "Ins.inter.json").write_text(json.dumps(kept))
    items = {str(i) for s in kept.values() for i in s}
    for name in ("vitemb", "lemb"):
        codes = json.loads((INSTRUMENTS / f"Instruments.index_{name}.json").read_text())
        (folder / f"Ins.index_{name}.json").write_text(json.dumps({k: v for k, v in codes.items() if k in items}))
    prepare_source(ImportSpec("ins300", "mql4grec", path=folder), folder / "out", progress=False)
    return folder / "out"


@pytest.mark.parametrize("model", ["MDSRec", "SASRecF", "GRU4RecF", "FDSA", "UniSRec", "SASRec"])
@pytest.mark.parametrize("dataset", ["ml40", "ins300"])
def test_every_model_trains_on_text_only_and_code_datasets(model, dataset, request, tmp_path):
    """microlens (text alone: MDSRec's single-modality path) and amazon-instruments (codes)."""
    import torch

    from helpers import build_model, fast_options

    out = request.getfixturevalue("microlens_slice")[1] if dataset == "ml40" else request.getfixturevalue("instruments_slice")
    modalities = ["text"] if dataset == "ml40" else ["image", "text"]
    options = fast_options(out, tmp_path, modalities=modalities, train_batch_size=128, seed=3)
    config, (train, _, _), built = build_model(model, options, dataset)
    if hasattr(built, "modal_items"):
        assert built.modal_items.modalities == (["text"] if model == "UniSRec" else modalities)
    batch = next(iter(train))
    loss = built.calculate_loss(batch)
    loss.backward()
    assert torch.isfinite(loss)
    built.eval()
    with torch.no_grad():
        assert built.full_sort_predict(batch).shape == (len(batch), built.n_items)


def test_a_dataset_described_in_yaml(tmp_path, ratings, movie_features):
    ratings.to_csv(tmp_path / "inter.csv", index=False)
    (tmp_path / "mydata.yaml").write_text(
        "name: described\nfrom: table\ninteractions: inter.csv\ntime: timestamp\nkcore: 3\n"
        f"features:\n  image: {movie_features[0].path}:{movie_features[0].tokens}\n")
    assert main(["--source", str(tmp_path / "mydata.yaml"), f"--data_path={tmp_path / 'out'}"]) == 0
    assert (tmp_path / "out" / "described" / "described.image.npz").is_file()


# --------------------------------------------------------------------- code features


def test_code_features_by_hand():
    with pytest.raises(DataError, match="mix prefixes"):  # plain numbers and a_/b_ in one level
        codes_as_features({"x": ["<a_1>", "<b_0>"], "z": [0, 2]}, "text", 3)
    arrays = codes_as_features({"x": ["<a_1>", "<b_0>"], "y": ["<a_1>", "<b_2>"]}, "text", 3)
    np.testing.assert_array_equal(arrays.features, [[0, 1, 0, 1, 0, 0], [0, 1, 0, 0, 0, 1]])
    assert arrays.source["levels"] == 2 and arrays.source["level_prefixes"] == ["a", "b"]
    assert codes_as_features({"x": [2, 0], "y": [2, 1]}, "image").dim == 2 * 3  # K = largest code + 1
    with pytest.raises(DataError, match=r"uneven lengths \[1, 2\]"):
        codes_as_features({"x": [1, 2], "y": [1]}, "text")
    with pytest.raises(DataError, match=r"outside 0\.\.255.*'y'"):
        codes_as_features({"x": [1, 2], "y": [1, 256]}, "text", 256)


# --------------------------------------------------------------------- bad input


@pytest.fixture
def own(tmp_path, ratings, movie_features):
    """A valid own dataset, as command-line arguments, and its output folder."""
    ratings.to_csv(tmp_path / "inter.csv", index=False)
    image = movie_features[0]
    args = ["own", "--from=table", f"--interactions={tmp_path / 'inter.csv'}", "--time=timestamp",
            f"--data_path={tmp_path / 'out'}"]
    return args, f"--feature=image={image.path}:{image.tokens}", tmp_path


def refused(capsys, argv, *expected, out=None) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    for text in expected:
        assert text in err, err
    assert "Traceback" not in err and "Fix" in err
    if out is not None:
        assert not (out / "own").exists()  # nothing half-written
    return err


def test_bad_tables_and_orders(own, capsys):
    args, image, tmp = own
    refused(capsys, [*args, "--user=customer", image], "no column(s) ['customer']", "user_id", out=tmp / "out")
    no_time = [a for a in args if not a.startswith("--time")]
    refused(capsys, [*no_time, image], "no timestamp column is named and --order=file is not given", out=tmp / "out")
    refused(capsys, [*args, "--kcore=500", image], "survives 500-core", out=tmp / "out")
    refused(capsys, [*args, "--images=nowhere/{item}.jpg"], "matches no file", out=tmp / "out")
    refused(capsys, [*args, "--images=nowhere.jpg"], "has no {item}", out=tmp / "out")


def test_bad_feature_rows(own, capsys, reference, movies):
    args, _, tmp = own
    tokens = tmp / "tokens.txt"

    def feature(name: str, rows: np.ndarray, ids) -> str:
        np.save(tmp / f"{name}.npy", rows)
        tokens.write_text("\n".join(map(str, ids)) + "\n")
        return f"--feature=image={tmp / (name + '.npy')}:{tokens}"

    rows = reference["image"][movies - 1]
    refused(capsys, [*args, feature("short", rows[1:], movies[1:])], "have no image row", f"first: ['{movies[0]}']",
            "--allow_missing=image", out=tmp / "out")
    extra = [*movies, 1683]
    refused(capsys, [*args, feature("long", np.concatenate([rows, rows[:1]]), extra)], "1 of the",
            "belong to no interacted item", "['1683']", "--allow_extra", out=tmp / "out")
    refused(capsys, [*args, feature("dup", rows, [movies[0], *movies[:-1]])], "appear more than once", out=tmp / "out")
    refused(capsys, [*args, feature("count", rows, movies[:-5])], "row counts differ", out=tmp / "out")
    nan = rows.copy()
    nan[4, 3] = np.nan
    refused(capsys, [*args, feature("nan", nan, movies)], "NaN or infinite", f"'{movies[4]}'", out=tmp / "out")
    refused(capsys, [*args, feature("flat", rows[:, 0], movies)], "dimension(s)", out=tmp / "out")
    refused(capsys, [*args, feature("ints", np.zeros((len(movies), 4), dtype=np.int64), movies)], "floating point",
            out=tmp / "out")


def test_bad_codes(own, capsys):
    args, _, tmp = own
    codes = {str(i): ["<a_1>", "<b_2>"] for i in pd.unique(pd.read_csv(tmp / "inter.csv")["item_id"])}
    codes["7"] = ["<a_1>"]
    (tmp / "uneven.json").write_text(json.dumps(codes))
    refused(capsys, [*args, f"--codes=text={tmp / 'uneven.json'}"], "uneven lengths", out=tmp / "out")
    codes["7"] = ["<a_1>", "<b_300>"]
    (tmp / "range.json").write_text(json.dumps(codes))
    refused(capsys, [*args, f"--codes=text={tmp / 'range.json'}:256"], "outside 0..255", "'7'", out=tmp / "out")


def test_a_benchmark_split_that_is_not_leave_one_out(tmp_path, ml_sequences, capsys):
    write_benchmark(tmp_path, "ml", ml_sequences)
    test = (tmp_path / "ml.test.inter").read_text().splitlines()
    user, history, target = test[1].split("\t")
    test[1] = "\t".join([user, " ".join(history.split()[:-1]), target])  # the test history skips the valid target
    (tmp_path / "ml.test.inter").write_text("\n".join(test) + "\n")
    err = refused(capsys, ["bad", "--from=recbole-benchmark", f"--path={tmp_path}", f"--data_path={tmp_path / 'out'}",
                           "--codes=text=none.json"], "is not leave-one-out by time", f"user {user}")
    assert not (tmp_path / "out").exists() and "test" in err
    with pytest.raises(DataError, match="would change"):
        spec = ImportSpec("kc", "mql4grec", path=INSTRUMENTS, stem="Instruments", kcore=6)
        prepare_source(spec, tmp_path / "kc", progress=False)
