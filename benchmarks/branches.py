"""MDSRec's per-modality branches: the Python loop the model runs against one batched call.

    python benchmarks/branches.py [--dataset ml-100k-mm] [--steps 4]

MDSRec on real data with the grid's settings (``properties/grid.yaml``). The batched form
stacks the branches' weights (``torch.func.stack_module_state``) and runs one
``torch.func.vmap`` of ``functional_call`` over the stacked token sequences ``[S, B, L, d]``,
so every layer is one grouped operation for all modalities. It checks that both give the same
user vectors (evaluation mode, where dropout is off) and times a training step's forward and
backward through the branches with each, in the same process. Layers are RecBole's stock
ones for both (``fast_layers=False``): vmap needs dropout that draws a mask per modality.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="ml-100k-mm")
    parser.add_argument("--steps", type=int, default=4)
    args = parser.parse_args()

    import torch
    from torch.func import functional_call, stack_module_state, vmap

    from recbole_mdsrec import properties
    from recbole_mdsrec.config import Config
    from recbole_mdsrec.launch import ProcessTuning
    from recbole_mdsrec.text_tables import render_table
    from recbole_mdsrec.training.runner import build

    ProcessTuning.command_line().apply()
    config = Config("MDSRec", args.dataset, [str(properties.path("grid.yaml"))],
                    config_dict={"gpu_id": "", "state": "WARNING", "show_progress": False, "fast_layers": False})
    _, (train_data, _, _), model, _ = build(config)
    batch = next(iter(train_data))
    item_seq, last_index = batch[model.ITEM_SEQ], batch[model.ITEM_SEQ_LEN] - 1
    mask, valid = model.get_attention_mask(item_seq), item_seq != 0
    branches = list(model.branches)
    template = copy.deepcopy(branches[0]).to("meta")

    def tokens():
        items = model.item_vectors()  # [n_items, S, d]
        return torch.stack([items[:, s].index_select(0, item_seq.flatten()).view(*item_seq.shape, -1)
                            for s in range(len(branches))])  # [S, B, L, d]

    def looped(x):
        return torch.stack([branch(x[s], mask, valid, last_index) for s, branch in enumerate(branches)], dim=1)

    params, buffers = stack_module_state(branches)  # leaves of their own: gradients reach them

    def batched(x):
        one = lambda p, b, t: functional_call(template, (p, b), (t, mask, valid, last_index))  # noqa: E731
        return vmap(one, randomness="different")(params, buffers, x).transpose(0, 1)

    model.eval(), template.eval()
    with torch.no_grad():
        x = tokens()
        difference = (looped(x) - batched(x)).abs().max().item()
    model.train(), template.train()

    def timed(forward) -> float:
        with torch.autograd.set_detect_anomaly(False):
            forward(tokens()).sum().backward()  # warm-up
            start = time.perf_counter()
            for _ in range(args.steps):
                forward(tokens()).sum().backward()
        return (time.perf_counter() - start) / args.steps

    loop_s, batched_s = timed(looped), timed(batched)
    print(f"MDSRec on {args.dataset}: {len(branches)} branches, batch {item_seq.shape[0]}, length {item_seq.shape[1]}, "
          f"{torch.get_num_threads()} thread(s); evaluation outputs differ by at most {difference:.2e}\n")
    print(render_table(["branches as", "forward + backward s", "× loop"],
                       [["Python loop (the model)", f"{loop_s:.3f}", "1.00"],
                        ["one vmap over stacked weights", f"{batched_s:.3f}", f"{batched_s / loop_s:.2f}"]]))


if __name__ == "__main__":
    main()
