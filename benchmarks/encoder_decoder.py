"""MISSRec's encoder-decoder: ``nn.Transformer`` against the plugin's batch-first one
(``recbole_mdsrec/models/encoder_decoder.py``), one training step's forward and backward of
the output MISSRec reads (the last position's).

    python benchmarks/encoder_decoder.py [--batch 2048] [--interests 40] [--length 20] [--threads 1]

MISSRec's grid sizes (hidden 300, 4 heads, feed-forward 256, dropout 0.5, one encoder and one
decoder layer; 40 interest slots and 20 items at length 20 with two modalities), in training
mode, under the runner's process settings and with the runner's fast dropout swapped into
both (``use_fast_layers``). Both take the same parameters; best of 5 after a warm-up, the two
alternating in one process, so the ratio compares them under the same load.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from recbole_mdsrec.launch import ProcessTuning, reexec_with_fast_malloc  # noqa: E402
from recbole_mdsrec.models.encoder_decoder import EncoderDecoder  # noqa: E402
from recbole_mdsrec.models.fast_layers import use_fast_layers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=2048)
    parser.add_argument("--interests", type=int, default=40)
    parser.add_argument("--length", type=int, default=20)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    reexec_with_fast_malloc()  # as run.py starts
    ProcessTuning.command_line().apply()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    reference = nn.Transformer(d_model=300, nhead=4, num_encoder_layers=1, num_decoder_layers=1, dim_feedforward=256,
                               dropout=0.5, activation="gelu", layer_norm_eps=1e-12, batch_first=True)
    plugin = EncoderDecoder(300, 4, 1, 1, 256, 0.5, "gelu", 1e-12)
    plugin.load_state_dict(reference.state_dict())
    for model in (reference, plugin):
        use_fast_layers(model)
        model.train()
    source = torch.randn(args.batch, args.interests, 300, requires_grad=True)
    target = torch.randn(args.batch, args.length, 300, requires_grad=True)
    source_valid = torch.rand(args.batch, args.interests) < 0.8
    source_valid[:, 0] = True
    target_valid = torch.ones(args.batch, args.length, dtype=torch.bool)
    last = torch.full((args.batch,), args.length - 1)

    def reference_step():
        memory = reference.encoder(source, src_key_padding_mask=~source_valid)
        reference.decoder(target, memory, tgt_key_padding_mask=~target_valid,
                          memory_key_padding_mask=~source_valid)[:, -1].sum().backward()  # the user: one position

    def plugin_step():
        memory = plugin.encoder(source, source_valid)
        plugin.decoder(target, target_valid, memory, source_valid, at=last).sum().backward()

    best = {"nn.Transformer": float("inf"), "plugin": float("inf")}
    steps = {"nn.Transformer": reference_step, "plugin": plugin_step}
    for step in steps.values():
        step()  # warm-up
    for _ in range(args.repeats):
        for name, step in steps.items():
            start = time.perf_counter()
            step()
            best[name] = min(best[name], time.perf_counter() - start)
    print(f"batch {args.batch}, {args.interests} interest slots, {args.length} items, "
          f"{torch.get_num_threads()} thread(s)")
    print("| encoder-decoder | seconds per step (best of %d) | ratio to nn.Transformer |" % args.repeats)
    print("|---|---|---|")
    for name, value in best.items():
        print(f"| {name} | {value:.3f} | {value / best['nn.Transformer']:.2f} |")


if __name__ == "__main__":
    main()
