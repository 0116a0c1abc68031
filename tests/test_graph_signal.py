"""The graph-signal report: validation pairs, neighbour hits and overlaps on the real slice."""

import numpy as np
import pytest

from helpers import MM_SLICE, build_model, table_rows
from recbole_mdsrec.cli.graph_signal import main
from recbole_mdsrec.config import Config
from recbole_mdsrec.data.dataset import user_sequences
from recbole_mdsrec.graphs import signal as graph_signal
from recbole_mdsrec.graphs.spec import GraphSpec
from recbole_mdsrec.registry import create_dataset


@pytest.mark.shared_data
def test_pairs_are_each_users_last_training_item_and_validation_item(mm_config):
    _, (train_data, valid_data, _), model = build_model("MDSRec", mm_config)
    train, valid = train_data.dataset, valid_data.dataset
    last, target = graph_signal.validation_pairs(valid)
    np.testing.assert_array_equal(target, valid.inter_feat[valid.iid_field].numpy())
    by_user = dict(zip(valid.inter_feat[valid.uid_field].numpy(), last))
    users, sequences = user_sequences(train)
    assert len(by_user) == len(users) == 100
    assert all(by_user[user] == sequence[-1] for user, sequence in zip(users, sequences))

    dense = model.graph_image.to_dense().numpy() > 0
    np.fill_diagonal(dense, False)
    neighbours = graph_signal.neighbour_lists(model.graph_image)
    assert neighbours.sum() == dense.sum() and not neighbours.diagonal().any()
    assert graph_signal.hit_rate(neighbours, last, target) == pytest.approx(dense[last, target].mean())
    assert 0 < dense[last, target].sum() < len(last)
    assert graph_signal.overlap(neighbours, neighbours) == 1.0


@pytest.mark.shared_data
def test_report_over_graph_modes(mm_config):
    config = Config("MDSRec", MM_SLICE, config_dict=mm_config)
    train, valid, _ = create_dataset(config).build()
    measurement = graph_signal.measure(train, valid, GraphSpec.from_config(config), [0.5, 1000.0])
    signals, overlaps = measurement.signals, measurement.overlaps
    names = ["behavior_knn", "modal_knn", "intersect", "behavior_weighted (beta=0.5)", "behavior_weighted (beta=1000)"]
    assert [(s.graph, s.modality) for s in signals] == [(n, m) for n in names for m in ("image", "text")]
    dataset = create_dataset(config)
    others = dataset.item_num - 2  # every item but the padding id and the item itself
    for s in signals:
        assert 0 <= s.hit_rate <= 1 and s.neighbours >= 1
        assert s.random_rate == pytest.approx(s.neighbours / others)
    assert list(overlaps) == names and all(0 <= v <= 1 for v in overlaps.values())
    # Ranked by co-occurrence, the modalities share most neighbours; by similarity, few
    # (measured on this slice: 0.69 and 0.03). Co-occurrence reaches the validation items
    # that poster similarity misses (0.10 and 0.01).
    assert overlaps["behavior_weighted (beta=1000)"] > 0.5 > 0.1 > overlaps["modal_knn"]
    image = {s.graph: s.hit_rate for s in signals if s.modality == "image"}
    assert image["behavior_weighted (beta=1000)"] > 3 * image["modal_knn"]
    partners: dict[int, set] = {}
    for sequence in dataset.build()[0].training_sequences():
        for p, item in enumerate(sequence):
            for other in sequence[p + 1:p + 1 + config["behavior_window"]]:
                if other != item:
                    partners.setdefault(item, set()).add(other)
                    partners.setdefault(other, set()).add(item)
    assert measurement.cooccurring == pytest.approx(np.mean([len(s) for s in partners.values()]))
    table = graph_signal.report(measurement)
    assert [row[0] for row in table_rows(table)].count("image") == len(names) and "neighbour overlap between modalities" in table


def test_bad_betas_name_the_option(capsys):
    assert main(["--betas=-1"]) == 2
    assert "--betas=-1" in capsys.readouterr().err
