"""softeq.core: pure JAX functions for entropy-regularised RL.

Soft values and Boltzmann policies [E1]–[E8], tabular soft backups and exact
evaluation [E9]–[E12], soft targets and advantages [E11], [E13], soft
Q-learning and entropy-regularised policy-gradient losses [E13]–[E16], soft
DQN targets (paper §6.2) and the natural-gradient pieces [E17]–[E18] of Schulman,
Chen & Abbeel, arXiv:1704.06440; beyond the paper, soft λ-returns [L1],
Munchausen targets [M1]–[M3] and discrete soft actor-critic [S1]–[S2].

This package imports only jax, chex, rlax and numpy (for eager checks of
concrete inputs).
"""

from softeq.core.dqn import DQN_TARGET_MODES, dqn_bootstrap_value, soft_dqn_targets
from softeq.core.losses import (
    ENTROPY_MODES,
    A2CLossExtras,
    a2c_loss,
    a2c_matched_soft_q_loss,
    regularised_policy_gradient_loss,
    soft_q_learning,
    soft_q_learning_loss,
    value_loss,
)
from softeq.core.mdp import (
    TabularMDP,
    boltzmann_policy_table,
    evaluate_policy,
    finite_horizon_regularised_objective,
    regularised_objective,
    soft_bellman_backup,
    soft_policy_evaluation_backup,
    soft_value_iteration,
    tabular_soft_values,
    validate_tabular_mdp,
)
from softeq.core.munchausen import munchausen_bellman_backup, munchausen_targets
from softeq.core.natural import (
    damped_soft_q_targets,
    natural_gradient_direction,
    regularised_npg_advantages,
)
from softeq.core.returns import (
    bootstrap_truncations,
    soft_lambda_advantages,
    soft_lambda_returns,
    soft_n_step_advantages,
    soft_n_step_targets,
    soft_td_errors,
)
from softeq.core.sac import (
    AutoTemperature,
    TemperatureState,
    auto_temperature,
    auto_temperature_loss,
    sac_actor_loss,
    sac_critic_targets,
)
from softeq.core.soft import (
    LOG_PRIOR_CONVENTIONS,
    boltzmann_kl,
    boltzmann_log_policy,
    kl_divergence,
    policy_entropy,
    policy_kl,
    policy_soft_value,
    scale_gradient,
    soft_value,
)

__all__ = [
    "DQN_TARGET_MODES",
    "ENTROPY_MODES",
    "LOG_PRIOR_CONVENTIONS",
    "A2CLossExtras",
    "AutoTemperature",
    "TabularMDP",
    "TemperatureState",
    "a2c_loss",
    "a2c_matched_soft_q_loss",
    "auto_temperature",
    "auto_temperature_loss",
    "boltzmann_kl",
    "boltzmann_log_policy",
    "boltzmann_policy_table",
    "bootstrap_truncations",
    "damped_soft_q_targets",
    "dqn_bootstrap_value",
    "evaluate_policy",
    "finite_horizon_regularised_objective",
    "kl_divergence",
    "munchausen_bellman_backup",
    "munchausen_targets",
    "natural_gradient_direction",
    "policy_entropy",
    "policy_kl",
    "policy_soft_value",
    "regularised_npg_advantages",
    "regularised_objective",
    "regularised_policy_gradient_loss",
    "sac_actor_loss",
    "sac_critic_targets",
    "scale_gradient",
    "soft_bellman_backup",
    "soft_dqn_targets",
    "soft_lambda_advantages",
    "soft_lambda_returns",
    "soft_n_step_advantages",
    "soft_n_step_targets",
    "soft_policy_evaluation_backup",
    "soft_q_learning",
    "soft_q_learning_loss",
    "soft_td_errors",
    "soft_value",
    "soft_value_iteration",
    "tabular_soft_values",
    "validate_tabular_mdp",
    "value_loss",
]
