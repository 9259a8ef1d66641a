"""softeq.properties: property-based checks of the paper's identities, reusable on your code.

- `strategies`: hypothesis strategies that build valid MDPs, policies,
  Q-tables, temperatures, priors, trajectories and feature maps by construction.
- `oracles`: independent float64 NumPy references (direct formulas, dense
  linear solves, brute-force recursions, path enumeration, finite differences).
- `equivalence`: exact expectations over enumerated trajectories of both sides
  of the main theorem [E15].
- `checkers`: `check_soft_q_gradient_identity(my_loss)` and
  `check_soft_n_step_targets(my_targets)` run the suite's properties against
  your own implementations and raise `PropertyViolation` (an AssertionError
  that `python -O` cannot remove) with a counterexample.
- `violations`: the `PropertyViolation` exception.

The test files beside these modules (one per theorem) form the suite; run it
with `python -m softeq.properties --profile ci`.
"""

from softeq.properties import checkers, equivalence, oracles, strategies, violations
from softeq.properties.checkers import (
    SoftQIdentityCase,
    assert_soft_q_gradient_identity,
    check_soft_n_step_targets,
    check_soft_q_gradient_identity,
    linear_q_table,
    soft_q_identity_cases,
    tabular_q_table,
)
from softeq.properties.equivalence import (
    EquivalenceGradients,
    PathGradients,
    Trajectories,
    enumerate_trajectories,
    expected_gradients,
    path_gradients,
)
from softeq.properties.strategies import (
    SoftStream,
    Trajectory,
    discounts,
    float_arrays,
    linear_feature_maps,
    log_priors,
    policies,
    q_tables,
    soft_streams,
    tabular_mdps,
    temperatures,
    terminal_states,
    trajectories,
)
from softeq.properties.violations import PropertyViolation

__all__ = [
    "EquivalenceGradients",
    "PathGradients",
    "PropertyViolation",
    "SoftQIdentityCase",
    "SoftStream",
    "Trajectories",
    "Trajectory",
    "assert_soft_q_gradient_identity",
    "check_soft_n_step_targets",
    "check_soft_q_gradient_identity",
    "checkers",
    "discounts",
    "enumerate_trajectories",
    "equivalence",
    "expected_gradients",
    "float_arrays",
    "linear_feature_maps",
    "linear_q_table",
    "log_priors",
    "oracles",
    "path_gradients",
    "policies",
    "q_tables",
    "soft_q_identity_cases",
    "soft_streams",
    "strategies",
    "tabular_mdps",
    "tabular_q_table",
    "temperatures",
    "terminal_states",
    "trajectories",
    "violations",
]
