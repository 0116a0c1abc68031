"""Per-user values of the top-k metrics, kept from each evaluation.

RecBole's top-k metrics compute every user's value (``metric_info``: ``[users, max k]``)
and report their mean. :class:`PerUserEvaluator` reports the same means and also keeps the
per-user values of the last evaluation, so that a comparison can test per user (the
information-retrieval practice: one paired observation per query) instead of per seed.
Users are keyed by their token (the dataset's own user id), never by RecBole's internal
index, which depends on the order the dataset was read in.
"""

from __future__ import annotations

import inspect
from collections import OrderedDict

import numpy as np
from recbole.evaluator import Evaluator
from recbole.evaluator.base_metric import TopkMetric


class PerUserEvaluator(Evaluator):
    """RecBole's ``Evaluator``; ``per_user`` holds ``{"recall@10": [users] float32, ...}`` of
    the last ``evaluate`` (its rows in the order the evaluation batches came)."""

    def __init__(self, config):
        super().__init__(config)
        self.per_user: dict[str, np.ndarray] = {}

    def evaluate(self, dataobject):
        """RecBole's results, in its order; each top-k metric's per-user values are computed
        once and averaged by the metric's own ``topk_result``, as its ``calculate_metric`` does."""
        result, self.per_user = OrderedDict(), {}
        for name, metric in self.metric_class.items():
            if not isinstance(metric, TopkMetric):
                result.update(metric.calculate_metric(dataobject))
                continue
            pos_index, pos_len = metric.used_info(dataobject)
            # Recall and NDCG need each user's number of positives; Hit, MRR and Precision do not.
            takes_len = len(inspect.signature(metric.metric_info).parameters) >= 2
            values = metric.metric_info(pos_index, pos_len) if takes_len else metric.metric_info(pos_index)  # [users, max k]
            result.update(metric.topk_result(name, values))
            for k in metric.topk:
                self.per_user[f"{name}@{k}"] = np.asarray(values[:, k - 1], dtype=np.float32)
        return result


def with_user_tokens(per_user: dict[str, np.ndarray], tokens: np.ndarray) -> dict[str, np.ndarray]:
    """``per_user`` plus ``"user"``: the token of each row, checked to be one per row."""
    lengths = {len(values) for values in per_user.values()}
    if lengths and lengths != {len(tokens)}:
        raise ValueError(f"per-user metrics have {sorted(lengths)} rows but the evaluation saw {len(tokens)} users")
    return {"user": np.asarray(tokens).astype(str), **per_user}
