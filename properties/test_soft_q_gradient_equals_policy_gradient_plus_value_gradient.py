"""Main theorem [E15]: the soft Q-learning gradient is a policy gradient plus a value gradient.

For any differentiable Q_θ with π_θ = π^B_{Q_θ}, V_θ = V_{Q_θ}, actions drawn
from π_θ and the n-step soft target y held fixed,

    ∇ E[½(Q_θ(s_t, a_t) − y_t)²] = −τ·E[∇log π_θ(a_t|s_t) Δ_t − τ∇KL(s_t)] + ∇E[½(V_θ(s_t) − V̂_t)²],

in exact expectation. Both sides are computed with softeq's losses
(`soft_q_learning_loss` on the left; `regularised_policy_gradient_loss` with
`soft_n_step_advantages`, and `value_loss`, on the right) as weighted sums over
every trajectory of length 3 of random MDPs (S, A) ∈ {(2, 3), (3, 2)}, with
random terminal states, priors of every kind and temperatures in [0.05, 5],
for n = 1, 2, 3 and for tabular and linear-feature Q_θ (the features are
differentiated too).

Tolerance: 1e-9 relative to the largest gradient entry (floored at 1e-3).
The two sides are sums of at most S^4·A^3 = 648 weighted per-path gradients
of order one, so float64 round-off is about 1e-15 to 1e-13 relative
(measured over 300 cases: at most 4.4e-14); a real discrepancy (a missing KL term, a
gradient through the target) is of order τ·KL or larger, and the checker
test shows both such bugs rejected.
"""

from __future__ import annotations

import pytest
from hypothesis import given

from softeq.properties.checkers import assert_soft_q_gradient_identity, soft_q_identity_cases


@pytest.mark.parametrize("n", [1, 2, 3])
@pytest.mark.parametrize("model", ["tabular", "linear"])
def test_soft_q_gradient_equals_policy_gradient_plus_value_gradient(model, n):
    @given(case=soft_q_identity_cases(models=(model,), n_values=(n,), horizon=3))
    def identity_holds(case):
        assert_soft_q_gradient_identity(case, tolerance=1e-9)

    identity_holds()
