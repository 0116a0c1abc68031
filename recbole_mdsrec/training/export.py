"""A trained model as a stand-alone scorer: padded item sequences in, top-k items out.

``export_scorer`` writes, into one folder:

- ``model.onnx`` (loaded by ``onnxruntime``) or ``model.pt`` (TorchScript, ``torch.jit.load``):
  inputs ``item_seq`` int64 [B, L] (internal item ids, oldest first, right-padded with 0,
  ``L = MAX_ITEM_LIST_LENGTH``) and ``item_seq_len`` int64 [B]; outputs ``scores`` float32
  [B, k] and ``items`` int64 [B, k], best first, the sequence's own items and the padding id
  excluded. Every item table the model derives from its weights, features and graphs
  (MDSRec's propagated modal spaces, MISSRec's adapted features) is computed once and baked
  in as a constant: neither RecBole nor the dataset is needed to score;
- ``items.tsv``: internal id, item token and title, to map ids to and from the catalogue;
- ``export.json``: what the scorer is (model, dataset, sequence length, k, the checkpoint,
  the code version) and its input and output names.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from recbole_mdsrec.errors import ConfigError
from recbole_mdsrec.files import write_text_atomically
from recbole_mdsrec.provenance import code_version
from recbole_mdsrec.training.recommend import Recommender

FORMATS = {"onnx": "model.onnx", "torchscript": "model.pt"}
INPUTS = ("item_seq", "item_seq_len")
OUTPUTS = ("scores", "items")


class TopKScorer(nn.Module):
    """``model.full_sort_predict`` of a padded batch, its own items masked, top-k."""

    def __init__(self, model: nn.Module, topk: int):
        super().__init__()
        self.model = model
        self.topk = topk

    def forward(self, item_seq: torch.Tensor, item_seq_len: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        scores = self.model.full_sort_predict({self.model.ITEM_SEQ: item_seq, self.model.ITEM_SEQ_LEN: item_seq_len})
        scores = scores.float().scatter(1, item_seq, float("-inf"))  # the history, and the padding id 0
        top = torch.topk(scores, self.topk, dim=1)
        return top.values, top.indices


@dataclass(frozen=True)
class ExportedScorer:
    folder: Path
    model_file: Path
    items_file: Path
    manifest_file: Path


def export_scorer(checkpoint, out_dir, format: str = "onnx", topk: int = 10) -> ExportedScorer:
    """Write the scorer of ``checkpoint`` into ``out_dir`` (see the module docstring)."""
    if format not in FORMATS:
        raise ConfigError(f"--export={format} is not a format this plugin writes. Fix: --export=onnx (read by "
                          "onnxruntime) or --export=torchscript (read by torch.jit.load).")
    recommender = Recommender(checkpoint)
    model, config = recommender.model, recommender.config
    n_items = model.n_items
    if not 1 <= topk < n_items:
        raise ConfigError(f"--topk={topk}: the scorer lists 1 to {n_items - 1} items (the catalogue less padding).")
    scorer = TopKScorer(model, topk).eval()
    example = _example_batch(recommender)
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    model_file = folder / FORMATS[format]
    with torch.no_grad():
        scorer(*example)  # fills the item tables a model keeps for evaluation: they are baked in as constants
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # exporter chatter (deprecations, dynamic-shape notes)
            if format == "onnx":
                _export_onnx(scorer, example, model_file)
            else:
                torch.jit.trace(scorer, example, check_trace=False).save(str(model_file))
    items_file = folder / "items.tsv"
    tokens = recommender.dataset.field2id_token[recommender.dataset.iid_field]
    lines = ["id\titem\ttitle"] + [f"{i}\t{tokens[i]}\t{recommender.title(str(tokens[i]))}" for i in range(1, n_items)]
    write_text_atomically(items_file, "\n".join(lines) + "\n")
    manifest = {
        "model": config["model"], "dataset": config["dataset"], "format": format, "file": model_file.name,
        "max_seq_length": config["MAX_ITEM_LIST_LENGTH"], "topk": topk, "n_items": n_items,
        "inputs": {"item_seq": "int64 [batch, max_seq_length], internal ids, right-padded with 0",
                   "item_seq_len": "int64 [batch]"},
        "outputs": {"scores": f"float32 [batch, {topk}]", "items": f"int64 [batch, {topk}], ids of items.tsv"},
        "checkpoint": str(checkpoint), "code_version": code_version(),
    }
    manifest_file = folder / "export.json"
    write_text_atomically(manifest_file, json.dumps(manifest, indent=1) + "\n")
    return ExportedScorer(folder, model_file, items_file, manifest_file)


def _example_batch(recommender: Recommender) -> tuple[torch.Tensor, torch.Tensor]:
    """Two real users' padded histories: the shapes (and, for tracing, the code paths) to export."""
    users = list(recommender.dataset.field2id_token[recommender.dataset.uid_field][1:3])
    return recommender.padded([recommender.user_history(str(u)) for u in users])


def _export_onnx(scorer: TopKScorer, example, path: Path) -> None:
    if importlib.util.find_spec("onnxscript") is None:  # torch's ONNX exporter needs it
        raise ConfigError("--export=onnx needs the packages onnx and onnxscript (and onnxruntime to load the "
                          "result). Fix: pip install -e \".[export]\", or use --export=torchscript.")
    batch = torch.export.Dim("batch", min=1, max=65536)
    torch.onnx.export(scorer, example, str(path), dynamo=True, input_names=list(INPUTS), output_names=list(OUTPUTS),
                      dynamic_shapes={"item_seq": {0: batch}, "item_seq_len": {0: batch}}, verbose=False)
