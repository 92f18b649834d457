"""Regularisers of the discriminator."""

from __future__ import annotations

from typing import Any, Callable, List

import torch as th


def _interpolate(expert: Any, agent: Any, alpha: th.Tensor, leaves: List[th.Tensor]) -> Any:
    """``alpha * expert + (1 - alpha) * agent`` per sample, through lists and dicts of tensors; collects the leaves."""
    if isinstance(expert, dict):
        return {key: _interpolate(expert[key], agent[key], alpha, leaves) for key in expert}
    if isinstance(expert, (list, tuple)):
        return [_interpolate(e, a, alpha, leaves) for e, a in zip(expert, agent)]
    weight = alpha.reshape(-1, *([1] * (expert.dim() - 1)))
    mixed = (weight * expert + (1 - weight) * agent).requires_grad_(True)
    leaves.append(mixed)
    return mixed


def _first_tensor(values: Any) -> th.Tensor:
    if isinstance(values, dict):
        return _first_tensor(next(iter(values.values())))
    if isinstance(values, (list, tuple)):
        return _first_tensor(values[0])
    return values


def gradient_penalty(
    net: Callable[[Any], th.Tensor],
    expert_inputs: Any,
    agent_inputs: Any,
    real: th.Tensor,
    generator: th.Generator,
) -> th.Tensor:
    """
    ``E[(||grad_x D(x)|| - 1)^2]`` on random interpolates ``x`` of expert and agent inputs (DAC). Pairs
    with an absorbing sample are left out: the absorbing state is a discrete extra state, and a slope
    bound towards it would keep its reward near the expert's (its features are those of the mean state).

    :param net: The discriminator as a function of its inputs
    :param expert_inputs: Discriminator inputs of expert samples: a float tensor ``(batch, ...)``, or a list or
        dict of them (e.g. images, actions and next images); the gradient's norm is taken over all of them
    :param agent_inputs: Discriminator inputs of as many agent samples, in the same layout
    :param real: Which pairs have no absorbing sample (boolean, one per pair)
    :param generator: Random generator of the interpolation weights (on the CPU)
    :return: The penalty (a scalar tensor)
    """
    first = _first_tensor(expert_inputs)
    alpha = th.rand(first.shape[0], 1, generator=generator).to(first.device)
    leaves: List[th.Tensor] = []
    mixed = _interpolate(expert_inputs, agent_inputs, alpha, leaves)
    gradients = th.autograd.grad(net(mixed).sum(), leaves, create_graph=True)
    flat_parts = [gradient.reshape(gradient.shape[0], -1) for gradient in gradients]
    flat = flat_parts[0] if len(flat_parts) == 1 else th.cat(flat_parts, dim=1)
    # sqrt(x + eps) rather than norm(): the norm's derivative is NaN where the gradient is zero
    norms = th.sqrt(flat.pow(2).sum(dim=1) + 1e-12)
    return ((norms - 1) ** 2 * real).sum() / real.sum().clamp(min=1)
