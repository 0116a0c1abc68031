"""The default MDSRec computes exactly what it computed before the authors' switches were
added (issue 20): same initialisation, same training step, same scores, bit for bit.

The reference digest in ``tests/data/mdsrec_default_scores.json`` was written by this file's
``reference_scores`` at commit fd952cb (before the switches); rewrite it only when a change
of the default's numbers is intended, and say so in the commit.
"""

import hashlib
import json
from pathlib import Path

import pytest
import torch

from helpers import build_model, train_step

pytestmark = pytest.mark.shared_data

REFERENCE = Path(__file__).parent / "data" / "mdsrec_default_scores.json"


def reference_scores(mm_config) -> torch.Tensor:
    """Full-sort scores of the first validation batch after one Adam step on the first
    training batch, from the default config at the slice's seed."""
    from recbole.utils import init_seed

    init_seed(mm_config["seed"], True)
    _, (train, valid, _), model = build_model("MDSRec", mm_config)
    torch.manual_seed(0)  # dropout masks of the step
    model.train()
    train_step(model, next(iter(train)))
    model.eval()
    with torch.no_grad():
        return model.full_sort_predict(next(iter(valid))[0]).contiguous()


def digest(scores: torch.Tensor) -> dict:
    return {"sha256": hashlib.sha256(scores.numpy().tobytes()).hexdigest(), "shape": list(scores.shape),
            "first": scores.flatten()[:8].tolist()}


def test_default_scores_are_bit_identical_to_before_the_authors_switches(mm_config):
    expected = json.loads(REFERENCE.read_text())
    got = digest(reference_scores(mm_config))
    assert got["shape"] == expected["shape"]
    assert got["first"] == expected["first"], "scores differ in value, not only in low bits"
    assert got["sha256"] == expected["sha256"]
