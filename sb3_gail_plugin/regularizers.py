"""Regularisers of the discriminator."""

from __future__ import annotations

import torch as th
from torch import nn


def gradient_penalty(
    net: nn.Module,
    expert_features: th.Tensor,
    agent_features: th.Tensor,
    real: th.Tensor,
    generator: th.Generator,
) -> th.Tensor:
    """
    ``E[(||grad_x D(x)|| - 1)^2]`` on random interpolates ``x`` of expert and agent inputs (DAC). Pairs
    with an absorbing sample are left out: the absorbing state is a discrete extra state, and a slope
    bound towards it would keep its reward near the expert's (its features are those of the mean state).

    :param net: The discriminator's network on features
    :param expert_features: Discriminator features of expert samples
    :param agent_features: Discriminator features of as many agent samples
    :param real: Which pairs have no absorbing sample (boolean, one per pair)
    :param generator: Random generator of the interpolation weights (on the CPU)
    :return: The penalty (a scalar tensor)
    """
    alpha = th.rand(expert_features.shape[0], 1, generator=generator).to(expert_features.device)
    mixed = (alpha * expert_features + (1 - alpha) * agent_features).requires_grad_(True)
    (gradients,) = th.autograd.grad(net(mixed).sum(), mixed, create_graph=True)
    # sqrt(x + eps) rather than norm(): the norm's derivative is NaN where the gradient is zero
    norms = th.sqrt(gradients.pow(2).sum(dim=1) + 1e-12)
    return ((norms - 1) ** 2 * real).sum() / real.sum().clamp(min=1)
