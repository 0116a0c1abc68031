"""Top-k recommendations from a trained checkpoint, for a known user or a raw sequence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from recbole.data.interaction import Interaction

from recbole_mdsrec.config import Config
from recbole_mdsrec.data.dataset import user_sequences
from recbole_mdsrec.errors import DataError
from recbole_mdsrec.text_tables import render_table
from recbole_mdsrec.training.checkpoints import (
    check_compatible,
    load_checkpoint,
    load_model_state,
)
from recbole_mdsrec.training.runner import build_data, build_model


@dataclass
class Recommendation:
    rank: int
    item: str
    title: str
    score: float


class Recommender:
    """A trained model with its dataset, rebuilt from the checkpoint alone (its config
    names the dataset files; features and graphs are rebuilt, graphs from their cache)."""

    def __init__(self, checkpoint, dataset: str | None = None):
        state = load_checkpoint(checkpoint)
        if dataset is not None:
            check_compatible(state["config"], {"model": state["config"]["model"], "dataset": dataset}, checkpoint)
        self.config = Config.from_plain(state["config"], model=state["model"], cmd_args={"state": "WARNING"})
        self.dataset, (train_data, _, _) = build_data(self.config)
        self.model = build_model(self.config, train_data)
        load_model_state(self.model, state)
        self.model.eval()
        users, sequences = user_sequences(self.dataset)
        self._sequence_of = dict(zip(users.tolist(), sequences))
        self._titles = _item_titles(Path(self.config["data_path"]), self.config["dataset"])

    def user_history(self, user_token: str) -> np.ndarray:
        field = self.dataset.uid_field
        if user_token not in self.dataset.field2token_id[field]:
            examples = ", ".join(self.dataset.field2id_token[field][1:4])
            raise DataError(
                f"User '{user_token}' (option --user) is not in dataset '{self.config['dataset']}'. "
                f"Fix: pass a user token from its .inter file (e.g. {examples}), or give the items "
                "directly with --sequence=ITEM,ITEM,..."
            )
        return self._sequence_of[self.dataset.token2id(field, user_token)]

    def item_ids(self, item_tokens: list[str]) -> np.ndarray:
        field = self.dataset.iid_field
        unknown = [t for t in item_tokens if t not in self.dataset.field2token_id[field]]
        if unknown or not item_tokens:
            raise DataError(
                f"Items {unknown or '(none)'} of --sequence are not items of dataset "
                f"'{self.config['dataset']}'. Fix: list item tokens from its .item/.inter files, comma-separated."
            )
        return np.array([self.dataset.token2id(field, t) for t in item_tokens])

    def title(self, item_token: str) -> str:
        return self._titles.get(item_token, "")

    def padded(self, histories: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        """Each history's most recent ``MAX_ITEM_LIST_LENGTH`` items, right-padded with 0 as
        RecBole feeds them: (item_seq [B, L], item_seq_len [B])."""
        max_len = self.config["MAX_ITEM_LIST_LENGTH"]
        item_seq = torch.zeros(len(histories), max_len, dtype=torch.long)
        lengths = torch.zeros(len(histories), dtype=torch.long)
        for row, history in enumerate(histories):
            recent = history[-max_len:]
            item_seq[row, : len(recent)] = torch.as_tensor(recent)
            lengths[row] = len(recent)
        return item_seq, lengths

    def interaction(self, history: np.ndarray) -> Interaction:
        """The model's input for one history (item ids, oldest first): one row, on the device."""
        item_seq, lengths = self.padded([history])
        return Interaction({
            self.model.ITEM_SEQ: item_seq,
            self.model.ITEM_SEQ_LEN: lengths,
            self.dataset.uid_field: torch.zeros(1, dtype=torch.long),
        }).to(self.config["device"])

    @torch.no_grad()
    def ranked(self, interaction: Interaction, history: np.ndarray, topk: int) -> tuple[list[int], list[float]]:
        """The ids and scores of the ``topk`` best items for ``interaction`` (one row, from
        :meth:`interaction`), best first; the padding and ``history``'s items excluded."""
        scores = self.model.full_sort_predict(interaction).view(-1).float().cpu()
        scores[0] = -torch.inf
        scores[torch.as_tensor(history)] = -torch.inf
        top = torch.topk(scores, min(topk, int(torch.isfinite(scores).sum())))
        return top.indices.tolist(), top.values.tolist()

    def token(self, item: int) -> str:
        return str(self.dataset.field2id_token[self.dataset.iid_field][item])

    def recommend(self, history: np.ndarray, topk: int = 10) -> list[Recommendation]:
        """The ``topk`` best items after ``history`` (item ids, oldest first), history excluded."""
        items, scores = self.ranked(self.interaction(history), history, topk)
        return [Recommendation(rank + 1, self.token(i), self.title(self.token(i)), score)
                for rank, (i, score) in enumerate(zip(items, scores))]

def _item_titles(data_dir: Path, dataset: str) -> dict[str, str]:
    """Item token -> a readable name from the ``.item`` file (its ``title`` column, or its
    first text column); empty when the dataset has none."""
    path = data_dir / f"{dataset}.item"
    if not path.is_file():
        return {}
    items = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False)
    names = {c.split(":")[0]: c for c in items.columns}
    text = [c for n, c in names.items() if n != "item_id" and c.endswith((":token_seq", ":token"))]
    column = names.get("title") or (text[0] if text else None)
    if column is None or names.get("item_id") is None:
        return {}
    return dict(zip(items[names["item_id"]], items[column]))


def format_recommendations(recommendations: list[Recommendation]) -> str:
    return render_table(["rank", "item", "title", "score"],
                        [[r.rank, r.item, r.title, f"{r.score:.4f}"] for r in recommendations])
