"""The training step the benchmarks time, taken as the plugin's trainer takes it."""

from __future__ import annotations


def optimizer_step(model, trainer, interaction) -> None:
    """One Adam step of ``model`` on ``interaction``: the loss in the run's precision
    (``trainer.precision``), its backward in fp32."""
    trainer.optimizer.zero_grad()
    with trainer.precision.autocast():
        loss = model.calculate_loss(interaction)
    loss.float().backward()
    trainer.optimizer.step()
