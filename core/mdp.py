"""Tabular entropy-regularised MDPs: soft backups, soft value iteration, exact evaluation.

The objects of paper §3.1–3.4 ([E9]–[E12]) for a finite MDP held as dense arrays.
They are the exact oracles that the property suite and the demo compare learners
against, and they are differentiable, so exact policy gradients come from
`jax.grad` of `regularised_objective`.

Reference: arXiv:1704.06440, §3.
"""

from __future__ import annotations

import functools

import chex
import jax
import jax.numpy as jnp
import numpy as np

from softeq.core import _checks
from softeq.core.soft import boltzmann_log_policy, soft_value

Array = chex.Array
Scalar = float | chex.Array


def _is_concrete(x) -> bool:
    return isinstance(x, np.ndarray | jax.Array) and not isinstance(x, jax.core.Tracer)


@chex.dataclass(frozen=True)
class TabularMDP:
    """A finite discounted MDP held as dense arrays.

    Attributes:
      transitions: `[S, A, S]` P(s' | s, a); each `[s, a, :]` row sums to 1.
      rewards: `[S, A]` expected reward r(s, a).
      discount: `[]` γ in [0, 1].
      initial_distribution: `[S]` μ(s₀).

    Construction with concrete arrays checks shapes and that the rows of
    `transitions` and `initial_distribution` are probability vectors; under
    `jit` or `tree_map` (traced or non-array leaves) the check is skipped.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP
      >>> mdp = TabularMDP(transitions=jnp.ones((2, 3, 2)) / 2, rewards=jnp.zeros((2, 3)),
      ...                  discount=jnp.array(0.9), initial_distribution=jnp.array([1.0, 0.0]))
      >>> mdp.num_states, mdp.num_actions
      (2, 3)
    """

    transitions: Array
    rewards: Array
    discount: Array
    initial_distribution: Array

    def __post_init__(self):
        arrays = (self.transitions, self.rewards, self.initial_distribution)
        discount_known = isinstance(self.discount, int | float) or _is_concrete(self.discount)
        # a batch of MDPs (leading axes, e.g. from vmap) is validated per member by its maker.
        unbatched = getattr(self.transitions, "ndim", None) == 3
        if unbatched and discount_known and all(_is_concrete(x) for x in arrays):
            validate_tabular_mdp(self)

    @property
    def num_states(self) -> int:
        return self.transitions.shape[0]

    @property
    def num_actions(self) -> int:
        return self.transitions.shape[1]


def validate_tabular_mdp(mdp: TabularMDP, *, atol: float = 1e-5) -> None:
    """Raises ValueError naming the field when `mdp` is not a valid finite MDP."""
    p = np.asarray(mdp.transitions)
    if p.ndim != 3 or p.shape[0] != p.shape[2]:
        raise ValueError(f"`transitions` must have shape [S, A, S], got {p.shape}.")
    s, a, _ = p.shape
    if np.shape(mdp.rewards) != (s, a):
        raise ValueError(
            f"`rewards` must have shape [S, A] = {(s, a)}, got {np.shape(mdp.rewards)}."
        )
    if np.shape(mdp.initial_distribution) != (s,):
        raise ValueError(
            f"`initial_distribution` must have shape [S] = {(s,)}, "
            f"got {np.shape(mdp.initial_distribution)}."
        )
    if np.ndim(mdp.discount) != 0 or not 0.0 <= float(mdp.discount) <= 1.0:
        raise ValueError(
            f"`discount` must be a scalar in [0, 1], got {np.asarray(mdp.discount)!r}."
        )
    row_sums = p.sum(-1)
    worst = np.unravel_index(np.argmax(np.abs(row_sums - 1.0)), row_sums.shape)
    if np.any(p < 0):
        raise ValueError(
            f"`transitions` must be non-negative; its smallest entry is {p.min():.6g}."
        )
    if not np.allclose(row_sums, 1.0, atol=atol):
        raise ValueError(
            "`transitions` must have every [s, a, :] row summing to 1; "
            f"row {tuple(int(i) for i in worst)} sums to {row_sums[worst]:.6g}."
        )
    _validate_distribution(np.asarray(mdp.initial_distribution), "initial_distribution", atol)


def _validate_distribution(probabilities: np.ndarray, name: str, atol: float) -> None:
    """Non-negative rows that sum to 1 along the last axis."""
    if np.any(probabilities < 0):
        raise ValueError(
            f"`{name}` must be non-negative; its smallest entry is {probabilities.min():.6g}."
        )
    sums = probabilities.sum(-1)
    if not np.allclose(sums, 1.0, atol=atol):
        raise ValueError(
            f"`{name}` must sum to 1 along its last axis; found sums up to "
            f"{np.max(np.abs(sums - 1.0)) + 1.0:.6g} (off by {np.max(np.abs(sums - 1.0)):.3g})."
        )


def _tabular_log_prior(log_prior, mdp: TabularMDP, dtype) -> Array:
    s, a = mdp.num_states, mdp.num_actions
    log_prior = _checks.resolve_log_prior(log_prior, a, dtype)
    if log_prior.ndim == 2 and log_prior.shape[0] != s:
        raise ValueError(
            f"`log_prior` must have shape [A] or [S, A] = {(s, a)}, got {log_prior.shape}."
        )
    return jnp.broadcast_to(log_prior, (s, a))


def _check_table(table, mdp: TabularMDP, *, name: str):
    _checks.check_rank(table, 2, name=name)
    expected = (mdp.num_states, mdp.num_actions)
    if table.shape != expected:
        raise ValueError(f"`{name}` must have shape [S, A] = {expected}, got {table.shape}.")


def _check_policy(policy, mdp: TabularMDP):
    _check_table(policy, mdp, name="policy")
    if _is_concrete(policy):
        _validate_distribution(np.asarray(policy), "policy", 1e-5)


def _table_log_prior(log_prior, q: Array) -> Array:
    """log π̄ broadcast to the `[S, A]` shape of a Q-table, with a named error."""
    log_prior = _checks.resolve_log_prior(log_prior, q.shape[-1], q.dtype)
    if log_prior.ndim > 2 or (log_prior.ndim == 2 and log_prior.shape[0] != q.shape[0]):
        raise ValueError(
            f"`log_prior` must have shape [A] or [S, A] = {tuple(q.shape)}, "
            f"got {tuple(log_prior.shape)}."
        )
    return jnp.broadcast_to(log_prior, q.shape)


def tabular_soft_values(
    q: Array, *, temperature: Scalar, log_prior: Array | str | None = None
) -> Array:
    """`[S]` soft value V_Q(s) of every row of a Q-table [E10].

    Args:
      q: `[S, A]` Q-table.
      temperature: τ > 0.
      log_prior: `[A]` or `[S, A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `[S]` soft values.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import tabular_soft_values
      >>> tabular_soft_values(jnp.zeros((2, 3)), temperature=1.0).tolist()
      [0.0, 0.0]
    """
    _checks.check_rank(q, 2, name="q")
    log_prior = _table_log_prior(log_prior, q)
    return jax.vmap(lambda qs, lp: soft_value(qs, temperature=temperature, log_prior=lp))(
        q, log_prior
    )


def soft_bellman_backup(
    q: Array, mdp: TabularMDP, *, temperature: Scalar, log_prior: Array | str | None = None
) -> Array:
    r"""The soft optimality ("Boltzmann") backup [E12].

    $$[\mathcal{T}Q](s,a) = r(s,a) + \gamma\,\mathbb{E}_{s'}\big[V_Q(s')\big],\quad
      V_Q(s) = \tau\log\mathbb{E}_{a\sim\bar\pi}e^{Q(s,a)/\tau}.$$

    Args:
      q: `[S, A]` Q-table.
      mdp: the MDP.
      temperature: τ > 0.
      log_prior: `[A]` or `[S, A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `[S, A]` 𝒯Q.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP, soft_bellman_backup
      >>> mdp = TabularMDP(transitions=jnp.ones((1, 2, 1)), rewards=jnp.array([[1.0, 0.0]]),
      ...                  discount=jnp.array(0.5), initial_distribution=jnp.ones(1))
      >>> soft_bellman_backup(jnp.zeros((1, 2)), mdp, temperature=1.0).tolist()
      [[1.0, 0.0]]

    Reference: arXiv:1704.06440, §3.3.
    """
    _check_table(q, mdp, name="q")
    _checks.check_temperature(temperature)
    v = tabular_soft_values(
        q, temperature=temperature, log_prior=_tabular_log_prior(log_prior, mdp, q.dtype)
    )
    return mdp.rewards + mdp.discount * jnp.einsum("sat,t->sa", mdp.transitions, v)


def _policy_kls(policy: Array, log_prior: Array) -> Array:
    log_policy = jnp.log(jnp.where(policy > 0, policy, 1.0))
    return jnp.sum(jnp.where(policy > 0, policy * (log_policy - log_prior), 0.0), axis=-1)


def soft_policy_evaluation_backup(
    q: Array,
    policy: Array,
    mdp: TabularMDP,
    *,
    temperature: Scalar,
    log_prior: Array | str | None = None,
) -> Array:
    r"""The regularised policy-evaluation backup of a fixed policy [E11].

    $$[\mathcal{T}_\pi Q](s,a) = r(s,a) + \gamma\,\mathbb{E}_{s'}\Big[
       \mathbb{E}_{a'\sim\pi}Q(s',a') - \tau\,\mathrm{KL}[\pi(\cdot|s')\|\bar\pi(\cdot|s')]\Big].$$

    Args:
      q: `[S, A]` Q-table.
      policy: `[S, A]` action probabilities π(a|s).
      mdp: the MDP.
      temperature: τ ≥ 0.
      log_prior: `[A]` or `[S, A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `[S, A]` 𝒯_π Q.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP, soft_policy_evaluation_backup
      >>> mdp = TabularMDP(transitions=jnp.ones((1, 2, 1)), rewards=jnp.array([[1.0, 0.0]]),
      ...                  discount=jnp.array(0.5), initial_distribution=jnp.ones(1))
      >>> out = soft_policy_evaluation_backup(jnp.array([[2.0, 0.0]]), jnp.array([[1.0, 0.0]]),
      ...                                     mdp, temperature=1.0)
      >>> [round(x, 4) for x in out[0].tolist()]  # 1 + 0.5 (2 − log 2), 0.5 (2 − log 2)
      [1.6534, 0.6534]

    Reference: arXiv:1704.06440, §3.2.
    """
    _check_table(q, mdp, name="q")
    _check_policy(policy, mdp)
    _checks.check_temperature(temperature, allow_zero=True)
    log_prior = _tabular_log_prior(log_prior, mdp, q.dtype)
    v = jnp.sum(policy * q, axis=-1) - temperature * _policy_kls(policy, log_prior)
    return mdp.rewards + mdp.discount * jnp.einsum("sat,t->sa", mdp.transitions, v)


def soft_value_iteration(
    mdp: TabularMDP,
    *,
    temperature: Scalar,
    log_prior: Array | str | None = None,
    tolerance: float = 1e-10,
    max_iterations: int = 10_000,
) -> Array:
    r"""Iterates the soft backup [E12] from Q = 0 to its fixed point Q*.

    Stops when $\|\mathcal{T}Q - Q\|_\infty \le$ `tolerance` or after
    `max_iterations`; since 𝒯 is a γ-contraction the error of the returned table
    is at most tolerance·γ/(1 − γ). π* is then `boltzmann_log_policy` of each row.

    Args:
      mdp: the MDP, with discount < 1.
      temperature: τ > 0.
      log_prior: `[A]` or `[S, A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.
      tolerance: stopping threshold on the sup-norm change.
      max_iterations: upper bound on the number of backups.

    Returns:
      `[S, A]` Q*.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP, soft_value_iteration
      >>> mdp = TabularMDP(transitions=jnp.ones((1, 2, 1)), rewards=jnp.zeros((1, 2)),
      ...                  discount=jnp.array(0.5), initial_distribution=jnp.ones(1))
      >>> soft_value_iteration(mdp, temperature=1.0, tolerance=1e-6).round(4).tolist()
      [[0.0, 0.0]]

    Reference: arXiv:1704.06440, §3.3.
    """
    _checks.check_temperature(temperature)
    _checks.check_positive_int(max_iterations, name="max_iterations")
    if not tolerance >= 0:
        raise ValueError(f"`tolerance` must be >= 0, got {tolerance!r}.")
    log_prior = _tabular_log_prior(log_prior, mdp, mdp.rewards.dtype)
    return _soft_value_iteration(
        mdp, temperature, log_prior, tolerance, max_iterations=max_iterations
    )


@functools.partial(jax.jit, static_argnames="max_iterations")
def _soft_value_iteration(mdp, temperature, log_prior, tolerance, *, max_iterations):
    """The iteration itself, compiled once per shape (arguments are checked by the caller)."""
    q0 = jnp.zeros_like(mdp.rewards)

    def backup(q):
        return soft_bellman_backup(q, mdp, temperature=temperature, log_prior=log_prior)

    def cond(carry):
        i, _, gap = carry
        return (i < max_iterations) & (gap > tolerance)

    def body(carry):
        i, q, _ = carry
        new_q = backup(q)
        return i + 1, new_q, jnp.max(jnp.abs(new_q - q))

    _, q, _ = jax.lax.while_loop(cond, body, (0, q0, jnp.array(jnp.inf, q0.dtype)))
    return q


def evaluate_policy(
    policy: Array, mdp: TabularMDP, *, temperature: Scalar, log_prior: Array | str | None = None
) -> tuple[Array, Array]:
    r"""Exact regularised values of a fixed policy by a linear solve [E9].

    $$V_\pi = (I - \gamma P_\pi)^{-1}(r_\pi - \tau\,\mathrm{KL}_\pi),\qquad
      Q_\pi(s,a) = r(s,a) + \gamma\,\mathbb{E}_{s'}V_\pi(s').$$

    Differentiable in `policy` and in the MDP's arrays.

    Args:
      policy: `[S, A]` action probabilities π(a|s).
      mdp: the MDP, with discount < 1 (or absorbing zero-reward states).
      temperature: τ ≥ 0.
      log_prior: `[A]` or `[S, A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `(v, q)`: `[S]` V_π and `[S, A]` Q_π.

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP, evaluate_policy
      >>> mdp = TabularMDP(transitions=jnp.ones((1, 2, 1)), rewards=jnp.array([[1.0, 0.0]]),
      ...                  discount=jnp.array(0.5), initial_distribution=jnp.ones(1))
      >>> v, q = evaluate_policy(jnp.array([[1.0, 0.0]]), mdp, temperature=0.1)
      >>> [round(x, 4) for x in v.tolist()]  # (1 − 0.1 log 2) / (1 − 0.5)
      [1.8614]

    Reference: arXiv:1704.06440, eq. 24–26.
    """
    _check_policy(policy, mdp)
    _checks.check_temperature(temperature, allow_zero=True)
    log_prior = _tabular_log_prior(log_prior, mdp, policy.dtype)
    p_pi = jnp.einsum("sa,sat->st", policy, mdp.transitions)
    r_pi = jnp.sum(policy * mdp.rewards, axis=-1) - temperature * _policy_kls(policy, log_prior)
    eye = jnp.eye(mdp.num_states, dtype=p_pi.dtype)
    v = jnp.linalg.solve(eye - mdp.discount * p_pi, r_pi)
    q = mdp.rewards + mdp.discount * jnp.einsum("sat,t->sa", mdp.transitions, v)
    return v, q


def regularised_objective(
    policy: Array, mdp: TabularMDP, *, temperature: Scalar, log_prior: Array | str | None = None
) -> Array:
    r"""Exact discounted regularised return η(π) = E_{s₀∼μ} V_π(s₀), [E9].

    Differentiable; `jax.grad` of it through a policy parameterisation is the
    exact entropy-regularised policy gradient.

    Args:
      policy: `[S, A]` action probabilities.
      mdp: the MDP.
      temperature: τ ≥ 0.
      log_prior: `[A]` or `[S, A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` η(π).

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP, regularised_objective
      >>> mdp = TabularMDP(transitions=jnp.ones((1, 2, 1)), rewards=jnp.array([[1.0, 0.0]]),
      ...                  discount=jnp.array(0.5), initial_distribution=jnp.ones(1))
      >>> round(float(regularised_objective(jnp.array([[1.0, 0.0]]), mdp, temperature=0.0)), 4)
      2.0
    """
    v, _ = evaluate_policy(policy, mdp, temperature=temperature, log_prior=log_prior)
    return jnp.dot(mdp.initial_distribution, v)


def finite_horizon_regularised_objective(
    policy: Array,
    mdp: TabularMDP,
    *,
    temperature: Scalar,
    horizon: int,
    log_prior: Array | str | None = None,
) -> Array:
    r"""Exact finite-horizon regularised return [E14].

    $$\eta_H(\pi) = \mathbb{E}\Big[\sum_{t<H}\gamma^t\big(r_t - \tau\,\mathrm{KL}_t\big)\Big],$$

    computed by H steps of backward dynamic programming; γ = 1 is allowed.

    Args:
      policy: `[S, A]` action probabilities (stationary).
      mdp: the MDP.
      temperature: τ ≥ 0.
      horizon: H ≥ 1 steps.
      log_prior: `[A]` or `[S, A]` log π̄; None or "uniform" for uniform, "entropy" for π̄ ≡ 1.

    Returns:
      `[]` η_H(π).

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import TabularMDP, finite_horizon_regularised_objective
      >>> mdp = TabularMDP(transitions=jnp.ones((1, 2, 1)), rewards=jnp.array([[1.0, 0.0]]),
      ...                  discount=jnp.array(1.0), initial_distribution=jnp.ones(1))
      >>> float(finite_horizon_regularised_objective(jnp.array([[1.0, 0.0]]), mdp,
      ...                                            temperature=0.0, horizon=3))
      3.0
    """
    _check_policy(policy, mdp)
    _checks.check_temperature(temperature, allow_zero=True)
    _checks.check_positive_int(horizon, name="horizon")
    log_prior = _tabular_log_prior(log_prior, mdp, policy.dtype)
    p_pi = jnp.einsum("sa,sat->st", policy, mdp.transitions)
    r_pi = jnp.sum(policy * mdp.rewards, axis=-1) - temperature * _policy_kls(policy, log_prior)

    def step(v, _):
        return r_pi + mdp.discount * p_pi @ v, None

    v, _ = jax.lax.scan(step, jnp.zeros_like(r_pi), None, length=horizon)
    return jnp.dot(mdp.initial_distribution, v)


def boltzmann_policy_table(
    q: Array, *, temperature: Scalar, log_prior: Array | str | None = None
) -> Array:
    """`[S, A]` probabilities of the Boltzmann policy of every row of a Q-table [E10].

    Examples:
      >>> import jax.numpy as jnp
      >>> from softeq.core import boltzmann_policy_table
      >>> boltzmann_policy_table(jnp.zeros((1, 2)), temperature=1.0).tolist()
      [[0.5, 0.5]]
    """
    _checks.check_rank(q, 2, name="q")
    log_prior = jnp.broadcast_to(
        _checks.resolve_log_prior(log_prior, q.shape[-1], q.dtype), q.shape
    )
    log_pi = jax.vmap(
        lambda qs, lp: boltzmann_log_policy(qs, temperature=temperature, log_prior=lp)
    )(q, log_prior)
    return jnp.exp(log_pi)
