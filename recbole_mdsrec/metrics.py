"""Names and order of the ranking metrics, as every table and printout shows them."""

from __future__ import annotations

METRIC_ORDER = ("recall", "ndcg", "mrr")
DISPLAY_NAMES = {"recall": "Recall", "ndcg": "NDCG", "mrr": "MRR", "hit": "Hit", "precision": "Precision"}


def metric_sort_key(name: str):
    """``recall@10`` < ``recall@20`` < ``ndcg@10`` …: by metric (``METRIC_ORDER``), then cut-off."""
    metric, _, k = name.partition("@")
    rank = METRIC_ORDER.index(metric) if metric in METRIC_ORDER else len(METRIC_ORDER)
    return rank, metric, int(k) if k.isdigit() else 0


def display_metric(name: str) -> str:
    """``ndcg@10`` -> ``NDCG@10``."""
    metric, _, k = name.partition("@")
    shown = DISPLAY_NAMES.get(metric, metric)
    return f"{shown}@{k}" if k else shown
