"""Users scored per second by an exported scorer (onnxruntime) against the eager model.

    python benchmarks/export.py [--models MDSRec,SASRec] [--dataset ml-100k-mm] [--batch 256] [--threads 1]

Each model is trained for one epoch (the weights do not change the speed), exported with
``recbole_mdsrec.training.export.export_scorer`` (top 10), and both scorers rank the same
real users' padded histories in batches of ``--batch``: the eager ``TopKScorer`` in torch
(``no_grad``, the model's item tables computed once, as the export bakes them) and the ONNX
file in onnxruntime, each on ``--threads`` threads. The ratio is onnxruntime's users/s over
eager's, both measured in the same run.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def users_per_second(score, batches, repeats: int = 3) -> float:
    score(*batches[0])  # warm-up
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for batch in batches:
            score(*batch)
        best = min(best, time.perf_counter() - start)
    return sum(len(b[0]) for b in batches) / best


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--models", default="MDSRec,SASRec")
    parser.add_argument("--dataset", default="ml-100k-mm")
    parser.add_argument("--batch", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()

    import onnxruntime
    import torch

    from recbole_mdsrec.training import runner
    from recbole_mdsrec.training.export import TopKScorer, export_scorer
    from recbole_mdsrec.training.recommend import Recommender

    torch.set_num_threads(args.threads)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = args.threads
    print("| model | users | eager users/s | onnxruntime users/s | ratio |\n|---|---|---|---|---|")
    for model in args.models.split(","):
        with tempfile.TemporaryDirectory() as folder:
            result = runner.run(model, args.dataset, config_dict={
                "epochs": 1, "gpu_id": "", "state": "WARNING", "show_progress": False, "checkpoint_dir": folder})
            exported = export_scorer(result.checkpoint, Path(folder) / "export", "onnx", topk=10)
            recommender = Recommender(result.checkpoint)
            tokens = recommender.dataset.field2id_token[recommender.dataset.uid_field][1:]
            histories = [recommender.user_history(str(t)) for t in tokens]
            batches = [recommender.padded(histories[i:i + args.batch]) for i in range(0, len(histories), args.batch)]
            eager = TopKScorer(recommender.model, 10).eval()
            with torch.no_grad():
                eager_rate = users_per_second(eager, batches)
            session = onnxruntime.InferenceSession(str(exported.model_file), options)
            numpy_batches = [(s.numpy(), n.numpy()) for s, n in batches]
            onnx_rate = users_per_second(
                lambda s, n: session.run(None, {"item_seq": s, "item_seq_len": n}), numpy_batches)
            print(f"| {model} | {len(histories)} | {eager_rate:,.0f} | {onnx_rate:,.0f} | {onnx_rate / eager_rate:.2f}× |")


if __name__ == "__main__":
    main()
