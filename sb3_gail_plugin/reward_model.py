"""GAIL reward model: a discriminator trained on expert versus collected agent transitions."""

from __future__ import annotations

import os
from contextlib import nullcontext
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple, Type, Union

import numpy as np
import torch as th
import torch.nn.functional as F
from gymnasium import spaces
from stable_baselines3.common.running_mean_std import RunningMeanStd
from stable_baselines3.common.torch_layers import BaseFeaturesExtractor
from stable_baselines3.common.utils import get_device

from sb3_gail_plugin import persistence
from sb3_gail_plugin.collected_data import CollectedTransitions
from sb3_gail_plugin.demonstrations import DemonstrationSource, load_demonstrations
from sb3_gail_plugin.discriminator import Discriminator, TensorObs
from sb3_gail_plugin.regularizers import gradient_penalty
from sb3_gail_plugin.reward_shaping import REWARD_FORMS, normalize_and_clip, reward_from_logits
from sb3_gail_plugin.state_cache import ModuleStateCache
from sb3_gail_plugin.tensor_data import DiscriminatorBatches, TransitionTensors, to_tensor
from sb3_gail_plugin.transitions import ObsArray, Transitions, clip_actions_to_bounds, conform_transitions, index_obs

ArrayOrTensor = Union[np.ndarray, th.Tensor]
ObsInput = Union[ArrayOrTensor, Mapping[str, ArrayOrTensor]]

AGENT_DATA_SOURCES = ("rollout", "replay")


class GailRewardModel:
    """
    GAIL reward model (Ho & Ermon, 2016), organised as DI-engine's IRL loop: collect agent
    transitions, train the discriminator on them against expert transitions, clear them, and
    relabel policy batches with :meth:`estimate`.

    The discriminator D outputs the logit of "expert"; the default reward is that logit,
    ``log D - log(1 - D)`` (``reward_form="airl"``), and every form is computed stably from it
    (see :func:`~sb3_gail_plugin.reward_shaping.reward_from_logits`).

    :param observation_space: The env's observation space
    :param action_space: The env's action space (Discrete, Box, MultiDiscrete or MultiBinary)
    :param demonstrations: Expert transitions, or anything :func:`load_demonstrations` reads
    :param hidden_dims: Width of the discriminator's two hidden layers (or a list of widths)
    :param batch_size: Expert and agent transitions per discriminator update (``batch_size`` of each)
    :param update_per_collect: Discriminator updates per call to :meth:`train`
    :param learning_rate: Adam learning rate of the discriminator
    :param reward_form: ``"gail"`` (``-log(1-D)``), ``"neg_log"`` (``log D``) or ``"airl"`` (the logit)
    :param absorbing: Absorbing states (DAC, Kostrikov et al. 2019): every termination that is not a
        time-limit truncation is followed by a learned absorbing state, for expert and agent data;
        :meth:`estimate` adds the absorbing state's discounted value ``gamma / (1 - gamma) * r_abs`` to
        the reward of terminal transitions, which is exact for a Q-target that stops at the termination
        (DQN's, SAC's and TD3's ``r + (1 - done) * gamma * next_q``). For SAC the absorbing state is entropy-free:
        its folded value holds no ``-ent_coef * log_prob`` bonus, so termination is neither paid nor charged
        through the entropy term
    :param gamma: Discount of the absorbing state's value, in [0, 1): the discount of the RL algorithm's
        target. ``None`` (default): ``GailCallback`` sets the model's ``gamma`` at training start; without
        the callback, :meth:`estimate` refuses to fold the absorbing value until it is set
    :param center_on_absorbing: With ``absorbing=True``: subtract the absorbing state's reward from
        every reward, so that the absorbing state is worth 0 and nothing is added to terminal
        transitions. A constant shift of every reward, absorbing state included, leaves the optimal
        policy unchanged; normalisation then only scales, and clipping can no longer make a step
        worth the same as the termination
    :param normalize_reward: Standardise rewards with running statistics of the agent rewards
    :param reward_clip: Clip rewards (after normalisation) to ``[-reward_clip, reward_clip]``
    :param gradient_penalty: Coefficient of the gradient penalty ``(||grad D(x)|| - 1)^2`` on random
        interpolates ``x`` of expert and agent inputs (DAC); 0 disables it
    :param gradient_penalty_interval: Lazy regularisation: compute the gradient penalty on every
        ``gradient_penalty_interval``-th discriminator update only (those whose count since the first is a
        multiple of it, across rounds), scaled by the interval (its double backward is about half of an
        update's cost; unlike StyleGAN2's lazy regularisation, Adam's settings are not rescaled); 1 (default)
        penalises every update
    :param spectral_norm: Spectral normalisation of the discriminator's layers
    :param entropy_coef: Coefficient of an entropy bonus on D's predictions (discourages overconfidence)
    :param label_smoothing: Train on targets ``1 - label_smoothing`` (expert) and ``label_smoothing`` (agent)
    :param inputs: Discriminator inputs: ``"sa"`` (s, a), ``"ss"`` (s, s'; state-only, accepts demonstrations
        without actions) or ``"sas"`` (s, a, s')
    :param normalize_obs: Standardise the observation features with the expert data's mean and std (images excepted)
    :param agent_data_source: Where the agent samples of D come from: ``"rollout"`` (the transitions
        collected since the last training, then cleared) or ``"replay"`` (the replay buffer, as in DAC)
    :param replay_window: With ``"replay"``: sample only the most recent ``replay_window`` transitions
    :param policy_expert_fraction: Fraction of each policy batch that ``GailReplayBuffer`` fills with
        expert transitions (relabelled by the discriminator like the rest); 0 disables it. ``None``
        (default): 0.5 when the demonstrations have actions, 0 for state-only demonstrations (which
        cannot be mixed into policy batches; a positive value is refused for them)
    :param target_new_data_count: New agent transitions needed before :meth:`ready_to_train` says yes;
        defaults to ``batch_size``
    :param device: Torch device of the discriminator
    :param seed: Seed of the discriminator's initial weights and of the minibatch sampling, independent
        of the global torch RNG; ``None`` draws them from the global torch RNG (``th.manual_seed``)
    :param features_extractor_class: SB3 features extractor of the observations (and next observations), as
        ``policy_kwargs["features_extractor_class"]`` of an SB3 policy. ``None`` (default) chooses as SB3 does:
        ``NatureCNN`` for an image space, ``CombinedExtractor`` for a ``Dict`` space holding images, and the
        flattened observation otherwise. Images are scaled to [0, 1] (uint8), given channel-first, and never
        standardised by ``normalize_obs``
    :param features_extractor_kwargs: Keyword arguments of the features extractor (e.g. ``dict(features_dim=256)``)
    """

    def __init__(
        self,
        observation_space: spaces.Space,
        action_space: spaces.Space,
        demonstrations: DemonstrationSource,
        hidden_dims: Union[int, Sequence[int]] = 64,
        batch_size: int = 64,
        update_per_collect: int = 100,
        learning_rate: float = 1e-3,
        reward_form: str = "airl",
        absorbing: bool = True,
        gamma: Optional[float] = None,
        center_on_absorbing: bool = False,
        normalize_reward: bool = False,
        reward_clip: Optional[float] = 10.0,
        gradient_penalty: float = 1.0,
        gradient_penalty_interval: int = 1,
        spectral_norm: bool = False,
        entropy_coef: float = 0.0,
        label_smoothing: float = 0.0,
        inputs: str = "sa",
        normalize_obs: bool = True,
        agent_data_source: str = "replay",
        replay_window: Optional[int] = None,
        policy_expert_fraction: Optional[float] = None,
        target_new_data_count: Optional[int] = None,
        device: Union[th.device, str] = "auto",
        seed: Optional[int] = None,
        features_extractor_class: Optional[Type[BaseFeaturesExtractor]] = None,
        features_extractor_kwargs: Optional[Dict[str, Any]] = None,
    ) -> None:
        positive_ints = (
            ("batch_size", batch_size),
            ("update_per_collect", update_per_collect),
            ("gradient_penalty_interval", gradient_penalty_interval),
        )
        for name, value in positive_ints:
            if isinstance(value, bool) or int(value) != value or int(value) < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        checks: List[Tuple[bool, str, Any]] = [
            (learning_rate > 0, "learning_rate must be positive", learning_rate),
            (reward_form in REWARD_FORMS, f"reward_form must be one of {REWARD_FORMS}", reward_form),
            (gamma is None or 0.0 <= gamma < 1.0, "gamma must be in [0, 1) or None", gamma),
            (reward_clip is None or reward_clip > 0, "reward_clip must be positive or None", reward_clip),
            (gradient_penalty >= 0, "gradient_penalty must be >= 0", gradient_penalty),
            (entropy_coef >= 0, "entropy_coef must be >= 0", entropy_coef),
            (0.0 <= label_smoothing < 0.5, "label_smoothing must be in [0, 0.5)", label_smoothing),
            (
                agent_data_source in AGENT_DATA_SOURCES,
                f"agent_data_source must be one of {AGENT_DATA_SOURCES}",
                agent_data_source,
            ),
            (replay_window is None or replay_window >= 1, "replay_window must be a positive integer or None", replay_window),
            (
                policy_expert_fraction is None or 0.0 <= policy_expert_fraction < 1.0,
                "policy_expert_fraction must be in [0, 1) or None",
                policy_expert_fraction,
            ),
        ]
        for ok, message, value in checks:
            if not ok:
                raise ValueError(f"{message}, got {value!r}")
        self.observation_space = observation_space
        self.action_space = action_space
        # plain Python values (not NumPy scalars from a config sweep): save() stores them, load() reads plain data only
        self.hidden_dims: Union[int, List[int]] = (
            int(hidden_dims) if isinstance(hidden_dims, (int, np.integer)) else [int(width) for width in hidden_dims]
        )
        self.batch_size = int(batch_size)
        self.update_per_collect = int(update_per_collect)
        self.learning_rate = float(learning_rate)
        self.reward_form = reward_form
        self.absorbing = bool(absorbing)
        self.gamma = None if gamma is None else float(gamma)
        self.center_on_absorbing = bool(center_on_absorbing)
        self.normalize_reward = bool(normalize_reward)
        self.reward_clip = None if reward_clip is None else float(reward_clip)
        self.gradient_penalty = float(gradient_penalty)
        self.gradient_penalty_interval = int(gradient_penalty_interval)
        self.spectral_norm = bool(spectral_norm)
        self.entropy_coef = float(entropy_coef)
        self.label_smoothing = float(label_smoothing)
        self.inputs = inputs
        self.normalize_obs = bool(normalize_obs)
        self.agent_data_source = agent_data_source
        self.replay_window = None if replay_window is None else int(replay_window)
        self.target_new_data_count = self.batch_size if target_new_data_count is None else int(target_new_data_count)
        self.device = get_device(device)
        self.seed = None if seed is None else int(seed)

        # A seed makes the initial weights independent of the global torch RNG (which it leaves untouched)
        with th.random.fork_rng(devices=[]) if seed is not None else nullcontext():
            if seed is not None:
                th.manual_seed(self.seed)  # type: ignore[arg-type]
            self.discriminator = Discriminator(
                observation_space,
                action_space,
                self.hidden_dims,
                inputs=inputs,
                absorbing=self.absorbing,
                spectral_norm=self.spectral_norm,
                features_extractor_class=features_extractor_class,
                features_extractor_kwargs=features_extractor_kwargs,
            ).to(self.device)
        # in eval mode outside train(): spectral norm's power iteration (and any dropout or batch norm of a custom
        # extractor) runs only while the discriminator trains, so that estimate() leaves its state untouched
        self.discriminator.eval()
        self.features_extractor_class = features_extractor_class
        self.features_extractor_kwargs = dict(features_extractor_kwargs or {})
        self.expert_data = clip_actions_to_bounds(
            conform_transitions(
                load_demonstrations(demonstrations),
                observation_space,
                action_space,
                require_actions=self.discriminator.uses_actions,
            ),
            action_space,
        )
        if policy_expert_fraction is None:
            policy_expert_fraction = 0.5 if self.expert_data.actions is not None else 0.0
        elif policy_expert_fraction > 0 and self.expert_data.actions is None:
            raise ValueError(
                f"policy_expert_fraction={policy_expert_fraction} mixes expert transitions into policy batches, which "
                "needs expert actions, but the demonstrations have none: use policy_expert_fraction=0 (or None)"
            )
        self.policy_expert_fraction = float(policy_expert_fraction)
        # foreach: one multi-tensor operation per Adam step, not one per parameter (the same values as the
        # per-parameter loop, PyTorch's default on the CPU, with torch >= 2.1; fewer operations per update)
        self.optimizer = th.optim.Adam(self.discriminator.parameters(), lr=self.learning_rate, foreach=True)
        self.generator = th.Generator(device="cpu")
        self.generator.manual_seed(self.seed if self.seed is not None else int(th.randint(2**62, (1,)).item()))
        self._expert = TransitionTensors(self.expert_data, self.device, self.absorbing)
        if self.normalize_obs and self.discriminator.obs_mean.numel() > 0:  # (nothing to standardise in images)
            features = self.discriminator.standardization_features(index_obs(self._expert.obs, slice(0, self._expert.n_real)))
            self.discriminator.set_obs_normalization(features.mean(dim=0), features.std(dim=0))
        self.reward_stats = RunningMeanStd(shape=())
        self._collected = CollectedTransitions()
        self._absorbing_cache = ModuleStateCache(self.discriminator)  # the absorbing state's logit, per state of D
        self.n_updates = 0
        # per-step rewards that the last train() computed its reward means from (CPU tensors), for histograms
        self.last_train_rewards: Dict[str, th.Tensor] = {}

    # ----------------------------------------------------------------------------------- data
    def collect_data(
        self,
        observations: Union[ObsArray, Transitions, Sequence[Dict[str, Any]]],
        actions: Optional[np.ndarray] = None,
        next_observations: Optional[ObsArray] = None,
        dones: Optional[np.ndarray] = None,
        timeouts: Optional[np.ndarray] = None,
    ) -> None:
        """
        Add agent transitions (one env step of every env, or any batch) to the training set.

        Either pass the arrays, or a single :class:`Transitions` batch or list of DI-engine style
        transition dicts as ``observations``.

        :param observations: Raw observations ``s``, shape ``(n, *obs_shape)``
        :param actions: Actions in the env's action space, shape ``(n, *action_shape)``
        :param next_observations: Raw next observations ``s'`` (real terminal observations at episode ends)
        :param dones: Episode ends, shape ``(n,)``
        :param timeouts: Which episode ends are time-limit truncations, shape ``(n,)``
        """
        self._collected.add(observations, actions, next_observations, dones, timeouts)

    def count_collected(self, n: int) -> None:
        """
        Count ``n`` agent transitions as collected without storing them. With ``agent_data_source="replay"`` the
        discriminator's agent data comes from the replay buffer, and the collected set only tells
        :meth:`ready_to_train` when enough new transitions arrived: :class:`GailVecEnvWrapper` then counts.

        :param n: Number of new agent transitions
        """
        self._collected.count(n)

    @property
    def n_collected(self) -> int:
        """Number of agent transitions collected since the last clear: stored, or only counted (:meth:`count_collected`)."""
        return len(self._collected)

    @property
    def agent_data(self) -> Optional[Transitions]:
        """The stored agent transitions (``None`` when none is stored; counted transitions are not stored)."""
        return self._collected.stored

    def ready_to_train(self) -> bool:
        """Whether at least ``target_new_data_count`` transitions were collected since the last clear."""
        return self.n_collected >= self.target_new_data_count

    def clear_data(self) -> None:
        """Empty the agent training set, and the count of :meth:`count_collected` (done after each :meth:`train`)."""
        self._collected.clear()

    def expert_transitions(self) -> Tuple[TensorObs, th.Tensor, TensorObs, th.Tensor]:
        """
        The real expert transitions (absorbing samples excluded), as tensors on the reward model's device
        (views of the ones the discriminator trains on, not copies).

        :return: Observations, actions (env units), next observations, terminations (1.0 where the
            episode terminated; 0.0 otherwise, and at time-limit truncations)
        :raises ValueError: if the demonstrations have no actions
        """
        expert = self._expert
        if expert.actions is None:
            raise ValueError("The demonstrations have no actions: they cannot be mixed into policy batches")
        real = slice(0, expert.n_real)
        return index_obs(expert.obs, real), expert.actions[real], index_obs(expert.next_obs, real), expert.terminals[real]

    def sample_expert_index(self, n: int) -> th.Tensor:
        """
        Rows of :meth:`expert_transitions` drawn with replacement, with the reward model's sampling generator.

        :param n: Number of rows
        :return: Long tensor of shape ``(n,)`` on the reward model's device
        """
        return th.randint(self._expert.n_real, (n,), generator=self.generator).to(self.device)

    def sample_expert(self, n: int) -> Tuple[TensorObs, th.Tensor, TensorObs, th.Tensor]:
        """
        Sample real expert transitions (with replacement), as tensors on the reward model's device.

        :param n: Number of transitions
        :return: Observations, actions (env units), next observations, terminations (1.0 where the
            episode terminated; 0.0 otherwise, and at time-limit truncations)
        """
        obs, actions, next_obs, terminals = self.expert_transitions()
        index = self.sample_expert_index(n)
        return index_obs(obs, index), actions[index], index_obs(next_obs, index), terminals[index]

    # ----------------------------------------------------------------------------------- training
    def _sample(self, n: int) -> th.Tensor:
        return th.randint(n, (self.batch_size,), generator=self.generator).to(self.device)

    def train(self, agent_data: Optional[Transitions] = None) -> Dict[str, float]:
        """
        Train the discriminator for ``update_per_collect`` steps, each on ``batch_size`` expert and
        ``batch_size`` agent transitions (sampled with replacement), with a binary cross-entropy loss
        on the logits (expert = 1, agent = 0) and the configured regularisers.

        :param agent_data: Agent transitions to train on; by default the collected set
        :return: Training statistics: ``disc_loss``, ``expert_acc``, ``agent_acc`` (training accuracies),
            ``reward_mean`` and ``expert_reward_mean`` (mean per-step reward on the agent data and on as
            many expert transitions, after training), ``n_agent_transitions``, and ``absorbing_reward``
            and ``grad_penalty`` when those are on. The per-step rewards behind the two means (the raw
            rewards of the configured form, before normalisation and clipping: every agent transition
            trained on, and up to ``batch_size`` sampled expert transitions) are kept, as CPU tensors,
            in ``last_train_rewards["agent"]`` and ``last_train_rewards["expert"]``
        """
        agent_data = self.agent_data if agent_data is None else agent_data
        if agent_data is None:
            n_counted = self._collected.n_counted
            counted = f" ({n_counted} counted by GailVecEnvWrapper, which only counts them with agent_data_source='replay')"
            raise RuntimeError(
                f"No agent transitions stored{counted if n_counted else ''}: call collect_data() before train(), "
                "or pass agent_data (e.g. replay_buffer.sample_transitions(n))"
            )
        agent_data = conform_transitions(
            agent_data,
            self.observation_space,
            self.action_space,
            name="agent data",
            require_actions=self.discriminator.uses_actions,
        )
        agent = TransitionTensors(agent_data, self.device, self.absorbing)
        expert = self._expert
        smooth = self.label_smoothing
        labels = th.cat([th.full((self.batch_size,), 1.0 - smooth), th.full((self.batch_size,), smooth)]).to(self.device)

        self.discriminator.train()
        stats: Dict[str, List[th.Tensor]] = {"disc_loss": [], "expert_acc": [], "agent_acc": [], "grad_penalty": []}
        discriminator = self.discriminator
        expert_batches, agent_batches = DiscriminatorBatches(expert, discriminator), DiscriminatorBatches(agent, discriminator)
        all_logits: List[th.Tensor] = []
        penalty_interval = self.gradient_penalty_interval
        try:
            for update in range(self.n_updates, self.n_updates + self.update_per_collect):
                expert_penalty_inputs, expert_features, expert_absorbing = expert_batches(self._sample(len(expert)))
                agent_penalty_inputs, agent_features, agent_absorbing = agent_batches(self._sample(len(agent)))
                logits = discriminator.net(th.cat([expert_features, agent_features])).squeeze(-1)
                loss = F.binary_cross_entropy_with_logits(logits, labels)
                stats["disc_loss"].append(loss.detach())
                if self.entropy_coef > 0:
                    entropy = F.binary_cross_entropy_with_logits(logits, th.sigmoid(logits))
                    loss = loss - self.entropy_coef * entropy
                if self.gradient_penalty > 0 and update % penalty_interval == 0:
                    real = (expert_absorbing == 0) & (agent_absorbing == 0)
                    penalty = self._gradient_penalty(expert_penalty_inputs, agent_penalty_inputs, real)
                    loss = loss + self.gradient_penalty * penalty_interval * penalty
                    stats["grad_penalty"].append(penalty.detach())
                self.optimizer.zero_grad()
                loss.backward()
                self.optimizer.step()
                all_logits.append(logits.detach())
        finally:  # eval mode outside train(), even when an update raises (or is interrupted)
            self.discriminator.eval()
        self.n_updates += self.update_per_collect
        # training accuracies, update by update (exact sums of 0/1 values: the same means as one update at a time)
        stacked = th.stack(all_logits)
        stats["expert_acc"] = list((stacked[:, : self.batch_size] > 0).float().mean(dim=1))
        stats["agent_acc"] = list((stacked[:, self.batch_size :] < 0).float().mean(dim=1))

        with th.no_grad():
            all_agent = th.arange(agent.n_real, device=self.device)
            agent_rewards = self._raw_rewards(*agent.inputs(all_agent))
            expert_rewards = self._raw_rewards(
                *expert.inputs(self._sample(expert.n_real)[: min(agent.n_real, self.batch_size)])
            )
        self.last_train_rewards = {"agent": agent_rewards.float().cpu(), "expert": expert_rewards.float().cpu()}
        if self.normalize_reward:
            self.reward_stats.update(self.last_train_rewards["agent"].numpy().astype(np.float64))
        result = {key: th.stack(values).mean().item() for key, values in stats.items() if values}
        result.update(
            reward_mean=agent_rewards.mean().item(),
            expert_reward_mean=expert_rewards.mean().item(),
            n_agent_transitions=float(agent.n_real),
        )
        if self.absorbing:
            result["absorbing_reward"] = self._absorbing_reward().item()
        return result

    def _gradient_penalty(self, expert_inputs: Any, agent_inputs: Any, real: th.Tensor) -> th.Tensor:
        """
        The gradient penalty of :func:`~sb3_gail_plugin.regularizers.gradient_penalty` on D, at interpolates of
        :meth:`Discriminator.penalty_inputs` (the MLP's input vector, or the inputs of the features extractor).
        """
        return gradient_penalty(self.discriminator.penalty_logits, expert_inputs, agent_inputs, real, self.generator)

    # ----------------------------------------------------------------------------------- rewards
    def _raw_rewards(
        self,
        obs: TensorObs,
        actions: Optional[th.Tensor],
        next_obs: Optional[TensorObs],
        absorbing: Optional[th.Tensor] = None,
    ) -> th.Tensor:
        """Per-step rewards of the configured form, before normalisation and clipping."""
        return reward_from_logits(self.discriminator(obs, actions, next_obs, absorbing), self.reward_form)

    def _absorbing_reward(self) -> th.Tensor:
        """
        Per-step reward of the absorbing state (its features are zero but for the flag), computed once per state
        of the discriminator's weights and statistics (:class:`~sb3_gail_plugin.state_cache.ModuleStateCache`).
        """
        logit = self._absorbing_cache.get()
        if logit is None:
            obs, actions, next_obs, _ = self._expert.inputs(th.zeros(1, dtype=th.long, device=self.device))
            logit = self.discriminator(obs, actions, next_obs, th.ones(1, device=self.device))[0]
            self._absorbing_cache.set(logit)
        return reward_from_logits(logit, self.reward_form)

    def _transform(self, rewards: th.Tensor, centered: bool = False) -> th.Tensor:
        stats = self.reward_stats if self.normalize_reward else None
        return normalize_and_clip(rewards, stats, self.reward_clip, centered)

    def estimate(
        self,
        obs: ObsInput,
        actions: Optional[ArrayOrTensor] = None,
        next_obs: Optional[ObsInput] = None,
        dones: Optional[ArrayOrTensor] = None,
    ) -> th.Tensor:
        """
        Reward of a batch of transitions under the current discriminator (no gradient): the
        configured reward form, normalised and clipped if asked, and with ``absorbing=True`` the
        absorbing state's discounted value ``gamma / (1 - gamma) * r_abs`` added where ``dones`` is 1
        (with ``center_on_absorbing=True``, ``r_abs`` is subtracted from every reward instead).

        :param obs: Raw observations, shape ``(batch, *obs_shape)``
        :param actions: Actions in the env's action space, shape ``(batch, *action_shape)``
            (``(batch,)`` or ``(batch, 1)`` for ``Discrete``); not needed with ``inputs="ss"``
        :param next_obs: Raw next observations (needed with ``inputs="ss"`` or ``"sas"``)
        :param dones: Terminations that are not time-limit truncations (SB3's sampled ``dones``),
            shape ``(batch,)`` or ``(batch, 1)``; used with ``absorbing=True``
        :return: Rewards, float tensor of shape ``(batch, 1)`` (the layout of SB3's
            ``ReplayBufferSamples.rewards``), on the device of ``actions`` (or ``obs``) if it is a
            tensor, else on the reward model's device
        """
        reference = actions if actions is not None else obs
        out_device = reference.device if isinstance(reference, th.Tensor) else self.device
        with th.no_grad():
            rewards = self._raw_rewards(
                to_tensor(obs, self.device),
                None if actions is None else to_tensor(actions, self.device),
                None if next_obs is None else to_tensor(next_obs, self.device),
            )
            if self.absorbing and self.center_on_absorbing:
                rewards = self._transform(rewards - self._absorbing_reward(), centered=True)
            else:
                rewards = self._transform(rewards)
                if self.absorbing and dones is not None:
                    if self.gamma is None:
                        raise RuntimeError(
                            "gamma is not set: the absorbing state's value gamma / (1 - gamma) * r_abs needs the discount "
                            "of the RL algorithm. GailCallback sets it from the model at training start; without the "
                            "callback, pass gamma=model.gamma to GailRewardModel (or set reward_model.gamma)"
                        )
                    terminals = to_tensor(dones, self.device).reshape(-1).float()
                    absorbing_value = self.gamma / (1.0 - self.gamma) * self._transform(self._absorbing_reward())
                    rewards = rewards + terminals * absorbing_value
        return rewards.reshape(-1, 1).to(out_device)

    # ----------------------------------------------------------------------------------- persistence
    def _init_kwargs(self) -> Dict[str, Any]:
        return dict(
            hidden_dims=self.hidden_dims,
            features_extractor_class=self.features_extractor_class,
            features_extractor_kwargs=self.features_extractor_kwargs,
            batch_size=self.batch_size,
            update_per_collect=self.update_per_collect,
            learning_rate=self.learning_rate,
            reward_form=self.reward_form,
            absorbing=self.absorbing,
            gamma=self.gamma,
            center_on_absorbing=self.center_on_absorbing,
            normalize_reward=self.normalize_reward,
            reward_clip=self.reward_clip,
            gradient_penalty=self.gradient_penalty,
            gradient_penalty_interval=self.gradient_penalty_interval,
            spectral_norm=self.spectral_norm,
            entropy_coef=self.entropy_coef,
            label_smoothing=self.label_smoothing,
            inputs=self.inputs,
            normalize_obs=self.normalize_obs,
            agent_data_source=self.agent_data_source,
            replay_window=self.replay_window,
            policy_expert_fraction=self.policy_expert_fraction,
            target_new_data_count=self.target_new_data_count,
            seed=self.seed,
        )

    def save(self, path: Union[str, os.PathLike[str]]) -> None:
        """
        Save everything training depends on, so that a loaded model trains exactly as this one would:
        spaces, arguments (``gamma`` included), discriminator weights (with its observation
        normalisation), optimiser state, the sampling generator's state, reward statistics, the
        collected transitions not yet trained on (stored, or only counted), and the expert demonstrations. The file holds only
        tensors and plain values, and :meth:`load` reads it without executing code: the features
        extractor is recorded by its import path, and its arguments must be plain values.

        :param path: File to write
        :raises TypeError: if ``features_extractor_kwargs`` hold something else than plain values
        """
        persistence.save_reward_model(self, path)

    @classmethod
    def load(
        cls,
        path: Union[str, os.PathLike[str]],
        device: Union[th.device, str] = "auto",
        features_extractor_class: Optional[Type[BaseFeaturesExtractor]] = None,
    ) -> GailRewardModel:
        """
        Load a reward model written by :meth:`save` (a class method, like SB3's ``DQN.load``). Only
        tensors and plain values are read (``torch.load(weights_only=True)``): a crafted file cannot
        execute code. SB3's features extractors (``NatureCNN``, ``CombinedExtractor``, ``FlattenExtractor``)
        are rebuilt from the name the file records; any other class is never imported from a file's say-so.

        :param path: File written by :meth:`save`
        :param device: Device to load the discriminator onto
        :param features_extractor_class: The discriminator's features extractor class, when it is not one of
            SB3's (it must have the import path the file records)
        :return: The reward model, in the state it was saved in
        """
        return persistence.load_reward_model(cls, path, device, features_extractor_class)
