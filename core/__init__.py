"""softeq.core: pure JAX functions for entropy-regularised RL.

Soft values and Boltzmann policies [E1]–[E8], tabular soft backups and exact
evaluation [E9]–[E12], soft targets and advantages [E11], [E13], soft
Q-learning and entropy-regularised policy-gradient losses [E13]–[E16], soft
DQN targets (paper §6.2) and the natural-gradient pieces [E17]–[E18] of Schulman,
Chen & Abbeel, arXiv:1704.06440.

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
from softeq.core.natural import (
    damped_soft_q_targets,
    natural_gradient_direction,
    regularised_npg_advantages,
)
from softeq.core.returns import (
    bootstrap_truncations,
    soft_n_step_advantages,
    soft_n_step_targets,
    soft_td_errors,
)
from softeq.core.soft import (
    boltzmann_kl,
    boltzmann_log_policy,
    kl_divergence,
    policy_kl,
    scale_gradient,
    soft_value,
)

__all__ = [
    "DQN_TARGET_MODES",
    "ENTROPY_MODES",
    "A2CLossExtras",
    "TabularMDP",
    "a2c_loss",
    "a2c_matched_soft_q_loss",
    "boltzmann_kl",
    "boltzmann_log_policy",
    "boltzmann_policy_table",
    "bootstrap_truncations",
    "damped_soft_q_targets",
    "dqn_bootstrap_value",
    "evaluate_policy",
    "finite_horizon_regularised_objective",
    "kl_divergence",
    "natural_gradient_direction",
    "policy_kl",
    "regularised_npg_advantages",
    "regularised_objective",
    "regularised_policy_gradient_loss",
    "scale_gradient",
    "soft_bellman_backup",
    "soft_dqn_targets",
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
