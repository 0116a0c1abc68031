"""Why these items: one user's recommendations with each modality's part of the score, the
history positions each modality's interest-centralized attention weighed, and each
recommended item's graph neighbours per modality; as text tables and as one picture.

Models expose what they have: MDSRec its score terms (``score_terms``: per space, or the
fused ID term and the modality terms of ``id_space``), its ICA weights
(``history_attention``) and its graphs (``graph_neighbours``); a model without them is
explained by its score alone.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from recbole_mdsrec.text_tables import render_table
from recbole_mdsrec.training.recommend import Recommender

NEIGHBOURS = 5


@dataclass
class ExplainedItem:
    rank: int
    item: str
    title: str
    score: float
    terms: dict[str, float]  # term name -> its part of the score (they sum to it)
    neighbours: dict[str, list[str]] = field(default_factory=dict)  # modality -> neighbour tokens


@dataclass
class Explanation:
    user: str
    model: str
    history: list[str]  # item tokens of the positions the model read, oldest first
    titles: list[str]
    attention: dict[str, list[float]]  # space -> weight of each history position (sums to 1)
    items: list[ExplainedItem]


class Explainer:
    def __init__(self, recommender: Recommender):
        self.recommender = recommender

    @torch.no_grad()
    def explain(self, user: str, topk: int = 10) -> Explanation:
        rec, model = self.recommender, self.recommender.model
        history = rec.user_history(user)
        interaction = rec.interaction(history)
        top_items, top_scores = rec.ranked(interaction, history, topk)
        terms = model.score_terms(interaction)[0].float().cpu() if hasattr(model, "score_terms") else None  # [T, n_items]
        attention = model.history_attention(interaction) if hasattr(model, "history_attention") else {}
        length = int(interaction[model.ITEM_SEQ_LEN][0])
        seen = [rec.token(i) for i in interaction[model.ITEM_SEQ][0, :length].tolist()]
        items = []
        for rank, (item, score) in enumerate(zip(top_items, top_scores)):
            neighbours = model.graph_neighbours(item, NEIGHBOURS) if hasattr(model, "graph_neighbours") else {}
            parts = ({name: float(terms[t, item]) for t, name in enumerate(model.term_names())}
                     if terms is not None else {"score": score})
            items.append(ExplainedItem(
                rank + 1, rec.token(item), rec.title(rec.token(item)), score, parts,
                {m: [rec.token(j) for j in ids] for m, ids in neighbours.items()}))
        return Explanation(
            user, rec.config["model"], seen, [rec.title(t) for t in seen],
            {space: weights[0, :length].tolist() for space, weights in attention.items()}, items)

def format_explanation(explanation: Explanation) -> str:
    names = list(explanation.items[0].terms) if explanation.items else []
    rows = [[i.rank, i.item, i.title[:40], f"{i.score:.4f}", *(f"{i.terms[n]:+.4f}" for n in names),
             "; ".join(f"{m}: {', '.join(tokens)}" for m, tokens in i.neighbours.items())] for i in explanation.items]
    parts = [f"Top {len(explanation.items)} items for user {explanation.user} by {explanation.model}; "
             "each term is its part of the score (they add up to it):",
             render_table(["rank", "item", "title", "score", *names, "graph neighbours"], rows)]
    if explanation.attention:
        spaces = list(explanation.attention)
        history = [[p + 1, token, title[:40], *(f"{explanation.attention[s][p]:.3f}" for s in spaces)]
                   for p, (token, title) in enumerate(zip(explanation.history, explanation.titles))]
        parts += ["", "Attention of each modality's interest-centralized read-out over the history (oldest first):",
                  render_table(["position", "item", "title", *spaces], history)]
    else:
        parts += ["", f"{explanation.model} exposes no attention over the history."]
    return "\n".join(parts)


@dataclass(frozen=True)
class Picture:
    path: Path
    thumbnails: int  # history positions drawn with their image
    panels: tuple[str, ...]  # titles of the attention and score panels


def draw_explanation(explanation: Explanation, path, images: dict[str, Path] | None = None) -> Picture:
    """One PNG: the history (thumbnails where ``images`` has them, titles, each modality's
    attention as bars) above the recommendations (each term's part of the score as bars)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    images = images or {}
    history = list(zip(explanation.history, explanation.titles))
    n_history = max(len(history), 1)
    figure = plt.figure(figsize=(max(10, 1.1 * n_history), 9))
    grid = figure.add_gridspec(3, n_history, height_ratios=[1.2, 1.4, 2.4], hspace=0.55)
    thumbnails = 0
    for p, (token, title) in enumerate(history):
        axis = figure.add_subplot(grid[0, p])
        axis.set_axis_off()
        picture = _thumbnail(images.get(token))
        if picture is not None:
            axis.imshow(picture)
            thumbnails += 1
        axis.set_title(_short(title or token, 14), fontsize=6)
    attention = figure.add_subplot(grid[1, :])
    attention.set_title("Interest-centralized attention over the history, per modality", fontsize=9)
    positions = np.arange(len(history))
    width = 0.8 / max(len(explanation.attention), 1)
    for s, (space, weights) in enumerate(explanation.attention.items()):
        attention.bar(positions + s * width, weights, width, label=space)
    if explanation.attention:
        attention.legend(fontsize=7)
    else:
        attention.text(0.5, 0.5, f"{explanation.model} exposes no attention", ha="center", transform=attention.transAxes)
    attention.set_xticks(positions, [str(p + 1) for p in positions], fontsize=6)
    shares = figure.add_subplot(grid[2, :])
    shares.set_title(f"Top {len(explanation.items)} for user {explanation.user} ({explanation.model}): "
                     "each term's part of the score", fontsize=9)
    labels = [f"{i.rank}. {_short(i.title or i.item, 30)}" for i in explanation.items]
    rows = np.arange(len(labels))[::-1]
    left_pos, left_neg = np.zeros(len(labels)), np.zeros(len(labels))
    for name in (explanation.items[0].terms if explanation.items else {}):
        values = np.array([i.terms[name] for i in explanation.items])
        base = np.where(values >= 0, left_pos, left_neg)
        shares.barh(rows, values, left=base, label=name)
        left_pos, left_neg = left_pos + np.maximum(values, 0), left_neg + np.minimum(values, 0)
    shares.set_yticks(rows, labels, fontsize=7)
    shares.axvline(0, color="black", linewidth=0.6)
    shares.legend(fontsize=7)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(figure)
    return Picture(path, thumbnails, (attention.get_title(), shares.get_title()))


def item_images(dataset: str) -> dict[str, Path]:
    """Item token -> its raw image file, for a built-in dataset whose raw files have images
    (ml-100k-mm's posters, hm's photos); empty for any other."""
    from recbole_mdsrec import roots
    from recbole_mdsrec.data.prepare import DATASETS

    spec = DATASETS.get(dataset)
    raw_dir = roots.raw_root() / spec.raw_subdir if spec is not None else None
    if raw_dir is None or not raw_dir.is_dir():
        return {}
    paths = spec.reader(raw_dir).modal_inputs.get("image")
    if paths is None:
        return {}
    return {str(token): Path(path) for token, path in paths.items() if isinstance(path, (str, Path))}


def _thumbnail(path: Path | None):
    if path is None or not Path(path).is_file():
        return None
    from PIL import Image

    with Image.open(path) as image:
        image.thumbnail((96, 96))
        return np.asarray(image.convert("RGB"))


def _short(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"
