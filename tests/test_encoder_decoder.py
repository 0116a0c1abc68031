"""MISSRec's batch-first encoder-decoder against ``nn.Transformer``, the layer it stands for."""

import torch
from torch import nn

from recbole_mdsrec.models.encoder_decoder import EncoderDecoder

SIZES = dict(hidden_size=24, n_heads=4, n_encoder_layers=2, n_decoder_layers=1, inner_size=16, activation="gelu",
             eps=1e-12)


def pair(dropout: float):
    torch.manual_seed(0)
    reference = nn.Transformer(d_model=24, nhead=4, num_encoder_layers=2, num_decoder_layers=1, dim_feedforward=16,
                               dropout=dropout, activation="gelu", layer_norm_eps=1e-12, batch_first=True)
    ours = EncoderDecoder(dropout=dropout, **SIZES)
    ours.load_state_dict(reference.state_dict(), strict=True)  # the same parameters under the same names
    return reference, ours


def inputs():
    generator = torch.Generator().manual_seed(1)
    source, target = torch.randn(3, 7, 24, generator=generator), torch.randn(3, 5, 24, generator=generator)
    source_valid = torch.tensor([[1, 1, 1, 1, 1, 1, 1], [1, 1, 0, 0, 0, 0, 0], [1, 0, 1, 0, 1, 1, 0]], dtype=torch.bool)
    target_valid = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=torch.bool)
    return source, target, source_valid, target_valid


def run_reference(model, source, target, source_valid, target_valid):
    memory = model.encoder(source, src_key_padding_mask=~source_valid)
    return memory, model.decoder(target, memory, tgt_key_padding_mask=~target_valid,
                                 memory_key_padding_mask=~source_valid)


def run_ours(model, source, target, source_valid, target_valid):
    memory = model.encoder(source, source_valid)
    return memory, model.decoder(target, target_valid, memory, source_valid)


def test_same_outputs_as_nn_transformer_in_evaluation():
    reference, ours = pair(dropout=0.5)
    reference.eval(), ours.eval()
    source, target, source_valid, target_valid = inputs()
    with torch.no_grad():
        memory, decoded = run_reference(reference, source, target, source_valid, target_valid)
        our_memory, our_decoded = run_ours(ours, source, target, source_valid, target_valid)
    # torch's evaluation fast path zeroes padded query rows: compare the valid positions
    assert torch.allclose(our_memory[source_valid], memory[source_valid], atol=1e-5)
    assert torch.allclose(our_decoded[target_valid], decoded[target_valid], atol=1e-5)
    assert not torch.equal(our_decoded[0], our_decoded[1])  # the masks change what a row sees


def test_same_gradients_as_nn_transformer_in_training_without_dropout():
    reference, ours = pair(dropout=0.0)
    source, target, source_valid, target_valid = inputs()
    for model, run in ((reference, run_reference), (ours, run_ours)):
        _, decoded = run(model, source, target, source_valid, target_valid)
        decoded[target_valid].pow(2).sum().backward()
    ours_grads = dict(ours.named_parameters())
    for name, parameter in reference.named_parameters():
        assert torch.allclose(ours_grads[name].grad, parameter.grad, atol=1e-4), name


def test_padding_never_changes_a_valid_output():
    _, ours = pair(dropout=0.0)
    ours.eval()
    source, target, source_valid, target_valid = inputs()
    changed_source, changed_target = source.clone(), target.clone()
    changed_source[~source_valid] = 1e3
    changed_target[~target_valid] = -1e3
    with torch.no_grad():
        _, decoded = run_ours(ours, source, target, source_valid, target_valid)
        _, changed = run_ours(ours, changed_source, changed_target, source_valid, target_valid)
    assert torch.allclose(decoded[target_valid], changed[target_valid], atol=1e-5)



def test_decoding_one_position_equals_that_row_of_the_whole_decoding():
    _, ours = pair(dropout=0.0)
    ours.decoder.layers.append(ours.decoder.layers[0].__class__(24, 4, 16, 0.0, "gelu", 1e-12))  # 2 layers
    source, target, source_valid, target_valid = inputs()
    at = target_valid.sum(1) - 1  # each sequence's last valid position
    memory = ours.encoder(source, source_valid)
    whole = ours.decoder(target, target_valid, memory, source_valid)
    assert torch.allclose(ours.decoder(target, target_valid, memory, source_valid, at=at),
                          whole[torch.arange(3), at], atol=1e-6)
