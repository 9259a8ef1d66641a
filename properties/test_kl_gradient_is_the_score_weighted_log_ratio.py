"""[E6] ∇_θ KL[π_θ‖π̄] = E_{a∼π_θ}[∇_θ log π_θ(a) · log(π_θ(a)/π̄(a))].

π_θ is a linear-softmax policy, logits = Φθ with features Φ `[A, F]`. The
left side is `jax.grad` of softeq's `kl_divergence` (and of `policy_kl`); the
right side is the expectation formula with the score computed two ways: by
`jax.jacobian` of log π_θ, and in closed form in NumPy
(∇ log π(a) = Φ_a − Σ_b π(b) Φ_b). The same holds for the Boltzmann policy
of a score vector, differentiated through `boltzmann_kl` with respect to q,
where ∇_q log π^B(a) = (e_a − π^B)/τ.

Tolerance: gradients are sums of ≤ 3 terms of size ≤ |Φ|·|log(π/π̄)| ≲ 40;
round-off is a few ulps of that, so 1e-11 absolute.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from softeq.core import boltzmann_kl, boltzmann_log_policy, kl_divergence, policy_kl
from softeq.properties import oracles
from softeq.properties import strategies as sqst
from softeq.properties._testing import assert_close, fast_jit


@st.composite
def linear_policies(draw):
    num_actions = draw(st.sampled_from(sqst.ACTION_MENU))
    num_features = draw(st.sampled_from(sqst.FEATURE_MENU))
    features = draw(sqst.float_arrays((num_actions, num_features), min_value=-2.0, max_value=2.0))
    theta = draw(sqst.float_arrays((num_features,), min_value=-2.0, max_value=2.0))
    return features, theta, draw(sqst.log_priors(num_actions))


def _kl_of_theta(theta, features, log_prior):
    return kl_divergence(jax.nn.log_softmax(features @ theta), log_prior)


@fast_jit
def _kl_gradients(theta, features, log_prior):
    direct = jax.grad(_kl_of_theta)(theta, features, log_prior)
    through_policy_kl = jax.grad(lambda t: policy_kl(features @ t, log_prior))(theta)
    log_pi = jax.nn.log_softmax(features @ theta)
    scores = jax.jacobian(lambda t: jax.nn.log_softmax(features @ t))(theta)  # [A, F]
    formula = jnp.exp(log_pi) @ (scores * (log_pi - log_prior)[:, None])
    return direct, through_policy_kl, formula


@given(case=linear_policies())
def test_kl_gradient_equals_expected_score_times_log_ratio(case):
    features, theta, log_prior = case
    direct, through_policy_kl, formula = _kl_gradients(theta, features, log_prior)
    pi = oracles.softmax(features @ theta)
    score = features - pi @ features  # [A, F] closed-form ∇ log π(a)
    oracle = pi @ (score * (np.log(pi) - log_prior)[:, None])
    assert_close(direct, oracle, tolerance=1e-11, what="jax.grad of kl_divergence vs formula")
    assert_close(through_policy_kl, oracle, tolerance=1e-11, what="jax.grad of policy_kl")
    assert_close(formula, oracle, tolerance=1e-11, what="jacobian formula vs closed form")


@fast_jit
def _boltzmann_kl_gradient(q, temperature, log_prior):
    return jax.grad(lambda x: boltzmann_kl(x, temperature=temperature, log_prior=log_prior))(q)


@given(
    q=st.sampled_from(sqst.ACTION_MENU).flatmap(lambda a: sqst.q_tables((a,))),
    temperature=sqst.temperatures(),
    data=st.data(),
)
def test_boltzmann_kl_gradient_in_q_is_the_expected_score_times_log_ratio(q, temperature, data):
    log_prior = data.draw(sqst.log_priors(q.shape[0]))
    gradient = _boltzmann_kl_gradient(q, temperature, log_prior)
    pi = oracles.boltzmann_policy(q, temperature=temperature, log_prior=log_prior)
    score = (np.eye(len(q)) - pi) / temperature  # row a: ∇_q log π^B(a)
    oracle = pi @ (score * (np.log(pi) - log_prior)[:, None])
    # 1/τ ≤ 20 multiplies the log-ratios (≤ ~40), so the scale is up to ~1e3.
    assert_close(gradient, oracle, tolerance=1e-12, scale=1.0 + np.max(np.abs(score)) * 40)
    log_pi = boltzmann_log_policy(jnp.asarray(q), temperature=temperature, log_prior=log_prior)
    assert_close(np.exp(log_pi), pi, tolerance=1e-12)
