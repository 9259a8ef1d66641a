"""Independent float64 NumPy references for the property suite.

Nothing here imports softeq or JAX: each quantity is computed by the most
direct formula available (explicit loops, dense linear solves, brute-force
recursions, enumeration of every short trajectory, central finite
differences), so that a property comparing softeq against an oracle compares
two independent implementations. Everything is float64.

MDP arguments are duck-typed: any object with `transitions [S, A, S]`,
`rewards [S, A]`, `discount []` and `initial_distribution [S]` attributes
(a `softeq.core.TabularMDP` qualifies). `log_prior` is log π̄ as `[A]` or
`[S, A]`; None means uniform, 1/A.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

__all__ = [
    "Paths",
    "boltzmann_policy",
    "entropy",
    "enumerate_paths",
    "evaluate_policy",
    "finite_difference_gradient",
    "finite_horizon_objective",
    "kl_divergence",
    "lambda_soft_returns",
    "logsumexp",
    "mirror_descent_value_iteration",
    "munchausen_targets",
    "n_step_soft_targets",
    "policy_kls",
    "regularised_score",
    "sac_critic_targets",
    "soft_bellman_backup",
    "soft_policy_evaluation_backup",
    "soft_td_errors",
    "soft_value",
    "soft_value_iteration",
    "softmax",
]


def _f64(x) -> np.ndarray:
    return np.asarray(x, dtype=np.float64)


def _log_prior(log_prior, num_actions: int) -> np.ndarray:
    if log_prior is None:
        return np.full(num_actions, -np.log(num_actions))
    return _f64(log_prior)


def logsumexp(x, axis: int = -1) -> np.ndarray:
    """log Σ exp(x) along `axis`, shifted by the maximum so it never overflows."""
    x = _f64(x)
    top = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(x - top), axis=axis))


def softmax(x, axis: int = -1) -> np.ndarray:
    """exp(x) / Σ exp(x) along `axis`, max-shifted."""
    x = _f64(x)
    z = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return z / np.sum(z, axis=axis, keepdims=True)


def soft_value(q, *, temperature: float, log_prior=None) -> np.ndarray:
    """`[...]` V_q = τ log Σ_a π̄(a) exp(q(a)/τ) over the last axis of `q [..., A]` [E3]."""
    q = _f64(q)
    return temperature * logsumexp(q / temperature + _log_prior(log_prior, q.shape[-1]))


def boltzmann_policy(q, *, temperature: float, log_prior=None) -> np.ndarray:
    """`[..., A]` π^B_q(a) ∝ π̄(a) exp(q(a)/τ) [E2]."""
    q = _f64(q)
    return softmax(q / temperature + _log_prior(log_prior, q.shape[-1]))


def kl_divergence(p, log_q) -> np.ndarray:
    """`[...]` Σ_a p(a)(log p(a) − log q(a)), terms with p(a) = 0 counted as 0.

    `log_q` may be unnormalised (log_q = 0 gives minus the entropy of p).
    """
    p, log_q = _f64(p), _f64(log_q)
    safe = np.where(p > 0, p, 1.0)
    return np.sum(np.where(p > 0, p * (np.log(safe) - log_q), 0.0), axis=-1)


def entropy(p) -> np.ndarray:
    """`[...]` −Σ_a p(a) log p(a)."""
    return -kl_divergence(p, np.zeros_like(_f64(p)))


def regularised_score(policy, q, *, temperature: float, log_prior=None) -> np.ndarray:
    """`[...]` E_π[q] − τ KL[π‖π̄], the bandit objective of [E1]/[E4]."""
    policy, q = _f64(policy), _f64(q)
    log_prior = _log_prior(log_prior, q.shape[-1])
    return np.sum(policy * q, axis=-1) - temperature * kl_divergence(policy, log_prior)


def policy_kls(policy, log_prior=None) -> np.ndarray:
    """`[S]` KL[π(·|s)‖π̄(·|s)] of a `[S, A]` policy table."""
    policy = _f64(policy)
    log_prior = np.broadcast_to(_log_prior(log_prior, policy.shape[-1]), policy.shape)
    return kl_divergence(policy, log_prior)


def evaluate_policy(
    policy, mdp: Any, *, temperature: float, log_prior=None
) -> tuple[np.ndarray, np.ndarray]:
    """Regularised `(V_π [S], Q_π [S, A])` by a dense linear solve [E9].

    V = (I − γP_π)⁻¹(r_π − τ KL_π), Q(s, a) = r(s, a) + γ Σ_s' P(s'|s, a) V(s').
    """
    policy = _f64(policy)
    transitions, rewards, discount = _f64(mdp.transitions), _f64(mdp.rewards), float(mdp.discount)
    num_states = policy.shape[0]
    p_pi = np.zeros((num_states, num_states))
    r_pi = np.zeros(num_states)
    for s in range(num_states):
        p_pi[s] = policy[s] @ transitions[s]
        r_pi[s] = policy[s] @ rewards[s]
    r_pi -= temperature * policy_kls(policy, log_prior)
    v = np.linalg.solve(np.eye(num_states) - discount * p_pi, r_pi)
    q = rewards + discount * transitions @ v
    return v, q


def soft_bellman_backup(q, mdp: Any, *, temperature: float, log_prior=None) -> np.ndarray:
    """`[S, A]` (𝒯Q)(s, a) = r(s, a) + γ Σ_s' P(s'|s, a) V_Q(s') [E12]."""
    q = _f64(q)
    v = soft_value(q, temperature=temperature, log_prior=log_prior)
    return _f64(mdp.rewards) + float(mdp.discount) * _f64(mdp.transitions) @ v


def soft_policy_evaluation_backup(
    q, policy, mdp: Any, *, temperature: float, log_prior=None
) -> np.ndarray:
    """`[S, A]` (𝒯_π Q)(s, a) = r + γ E_s'[E_{a'∼π} Q(s', a') − τ KL(s')] [E11]."""
    q, policy = _f64(q), _f64(policy)
    v = np.sum(policy * q, axis=-1) - temperature * policy_kls(policy, log_prior)
    return _f64(mdp.rewards) + float(mdp.discount) * _f64(mdp.transitions) @ v


def soft_value_iteration(
    mdp: Any, *, temperature: float, log_prior=None, tolerance: float = 1e-12
) -> np.ndarray:
    """`[S, A]` Q* by iterating the soft backup from 0 until the sup-norm change ≤ tolerance."""
    q = np.zeros_like(_f64(mdp.rewards))
    for _ in range(100_000):
        new_q = soft_bellman_backup(q, mdp, temperature=temperature, log_prior=log_prior)
        gap = np.max(np.abs(new_q - q))
        q = new_q
        if gap <= tolerance:
            return q
    raise RuntimeError("soft value iteration did not converge; is the discount < 1?")


def finite_horizon_objective(
    policy, mdp: Any, *, temperature: float, horizon: int, log_prior=None
) -> float:
    """E[Σ_{t<H} γ^t (r_t − τ KL_t)] from s₀ ∼ μ, by forward propagation of the state law."""
    policy = _f64(policy)
    transitions, rewards, discount = _f64(mdp.transitions), _f64(mdp.rewards), float(mdp.discount)
    kls = policy_kls(policy, log_prior)
    state_law = _f64(mdp.initial_distribution)
    total = 0.0
    for t in range(horizon):
        per_state = np.sum(policy * rewards, axis=-1) - temperature * kls
        total += discount**t * float(state_law @ per_state)
        state_law = np.einsum("s,sa,sat->t", state_law, policy, transitions)
    return total


def soft_td_errors(r_t, discount_t, v_tm1, v_t, kl_tm1, *, temperature: float) -> np.ndarray:
    """`[T]` δ_i = r_i − τ KL(s_i) + γ_i V(s_{i+1}) − V(s_i) [E11], one step at a time."""
    r_t, discount_t, v_tm1, v_t, kl_tm1 = map(_f64, (r_t, discount_t, v_tm1, v_t, kl_tm1))
    out = np.empty_like(r_t)
    for i in range(len(r_t)):
        out[i] = r_t[i] - temperature * kl_tm1[i] + discount_t[i] * v_t[i] - v_tm1[i]
    return out


def n_step_soft_targets(r_t, discount_t, v_t, kl_t, *, temperature: float, n: int) -> np.ndarray:
    """`[T]` n-step soft targets [E13] by brute force, window by window.

    With the rlax alignment (`v_t[i]` = V(s_{i+1}), `kl_t[i]` = KL(s_{i+1}),
    `discount_t[i]` = γ(1 − terminal_{i+1})) and m = min(n, T − i):

        y_i = r_i + Σ_{d=1}^{m−1} Γ_d (r_{i+d} − τ KL(s_{i+d})) + Γ_m V(s_{i+m}),

    where Γ_d = Π_{j<d} discount_t[i + j] (0 once an episode has ended).
    """
    r_t, discount_t, v_t, kl_t = map(_f64, (r_t, discount_t, v_t, kl_t))
    length = len(r_t)
    targets = np.empty(length)
    for i in range(length):
        window = min(n, length - i)
        total, weight = r_t[i], 1.0
        for d in range(1, window):
            weight *= discount_t[i + d - 1]
            total += weight * (r_t[i + d] - temperature * kl_t[i + d - 1])
        weight *= discount_t[i + window - 1]
        targets[i] = total + weight * v_t[i + window - 1]
    return targets


def lambda_soft_returns(r_t, discount_t, v_t, kl_t, *, temperature: float, lambda_) -> np.ndarray:
    """`[T]` soft λ-returns [L1] as the explicit mixture of the n-step soft targets.

    For each i, with m = T − i the longest window the sequence holds and
    λ_j the mixing weight of step j (a scalar λ is used at every step):

        G_i = Σ_{n=1}^{m−1} (Π_{j<n−1} λ_{i+j})(1 − λ_{i+n−1}) y^(n)_i
              + (Π_{j<m−1} λ_{i+j}) y^(m)_i,

    every y^(n)_i from `n_step_soft_targets`, window by window (no recursion).
    """
    r_t, discount_t, v_t, kl_t = map(_f64, (r_t, discount_t, v_t, kl_t))
    length = len(r_t)
    lambdas = np.broadcast_to(_f64(lambda_), (length,))
    returns = np.empty(length)
    for i in range(length):
        longest = length - i
        total, carried = 0.0, 1.0
        for n in range(1, longest + 1):
            y_n = n_step_soft_targets(
                r_t[i:], discount_t[i:], v_t[i:], kl_t[i:], temperature=temperature, n=n
            )[0]
            if n < longest:
                weight = carried * (1.0 - lambdas[i + n - 1])
                carried *= lambdas[i + n - 1]
            else:
                weight = carried  # the tail weight falls on the longest target
            total += weight * y_n
        returns[i] = total
    return returns


def munchausen_targets(
    q_tm1, a_tm1, r_t, discount_t, q_t, *, temperature: float, alpha: float, log_policy_clip
) -> np.ndarray:
    """`[T]` Munchausen DQN targets [M1], one transition at a time.

    y_i = r_i + ατ clip(ln π(a_i|s_i), l0, 0)
              + γ_i Σ_a' π(a'|s_{i+1})(q̄(s_{i+1}, a') − τ ln π(a'|s_{i+1})),
    with π = softmax(q̄/τ); `log_policy_clip=None` means no clip.
    """
    q_tm1, r_t, discount_t, q_t = map(_f64, (q_tm1, r_t, discount_t, q_t))
    targets = np.empty(len(r_t))
    for i in range(len(r_t)):
        log_pi = np.log(softmax(q_tm1[i] / temperature))[a_tm1[i]]
        if log_policy_clip is not None:
            log_pi = min(max(log_pi, log_policy_clip), 0.0)
        following = softmax(q_t[i] / temperature)
        bootstrap = np.sum(following * (q_t[i] - temperature * np.log(following)))
        targets[i] = r_t[i] + alpha * temperature * log_pi + discount_t[i] * bootstrap
    return targets


def mirror_descent_value_iteration(
    mdp: Any, q0, policy0, *, kl_weight: float, entropy_weight: float, iterations: int
) -> tuple[np.ndarray, np.ndarray]:
    """Mirror-descent value iteration MD-VI(λ, τ') [M2]: `(policies, q)`, each `[K + 1, S, A]`.

    π_{k+1} ∝ π_k^{λ/(λ+τ')} exp(q_k/(λ+τ')),
    q_{k+1} = r + γ P ⟨π_{k+1}, q_k − λ ln(π_{k+1}/π_k) − τ' ln π_{k+1}⟩,
    from (q_0, π_0) = (`q0`, `policy0`), for K = `iterations` steps.
    """
    rewards, transitions, discount = _f64(mdp.rewards), _f64(mdp.transitions), float(mdp.discount)
    lam, tau = kl_weight, entropy_weight
    policies, qs = [_f64(policy0)], [_f64(q0)]
    for _ in range(iterations):
        policy, q = policies[-1], qs[-1]
        new_policy = softmax((lam * np.log(policy) + q) / (lam + tau))
        log_new = np.log(new_policy)
        regularised = q - lam * (log_new - np.log(policy)) - tau * log_new
        v = np.sum(new_policy * regularised, axis=-1)
        policies.append(new_policy)
        qs.append(rewards + discount * transitions @ v)
    return np.stack(policies), np.stack(qs)


def sac_critic_targets(r_t, discount_t, q1_t, q2_t, policy_t, *, temperature: float) -> np.ndarray:
    """`[T]` discrete-SAC targets [S1], per step.

    y_i = r_i + γ_i Σ_a' π(a'|s_{i+1})(min(q̄_1, q̄_2)(s_{i+1}, a') − α ln π(a'|s_{i+1})).
    """
    r_t, discount_t, q1_t, q2_t, policy_t = map(_f64, (r_t, discount_t, q1_t, q2_t, policy_t))
    targets = np.empty(len(r_t))
    for i in range(len(r_t)):
        smaller = np.minimum(q1_t[i], q2_t[i])
        p = policy_t[i]
        safe = np.where(p > 0, p, 1.0)
        bootstrap = np.sum(np.where(p > 0, p * (smaller - temperature * np.log(safe)), 0.0))
        targets[i] = r_t[i] + discount_t[i] * bootstrap
    return targets


class Paths(NamedTuple):
    """All length-H trajectories of an MDP under a policy.

    Attributes:
      states: `[N, H + 1]` s_0 … s_H.
      actions: `[N, H]` a_0 … a_{H−1}.
      probabilities: `[N]` their probabilities (only paths of positive probability).
    """

    states: np.ndarray
    actions: np.ndarray
    probabilities: np.ndarray


def enumerate_paths(mdp: Any, policy, *, horizon: int) -> Paths:
    """Every trajectory (s_0, a_0, …, s_H) with positive probability.

    Built forward one step at a time: each partial path is extended by every
    action and next state, and its probability multiplied by π(a|s)·P(s'|s, a).
    """
    policy = _f64(policy)
    transitions, mu = _f64(mdp.transitions), _f64(mdp.initial_distribution)
    num_states, num_actions = policy.shape
    states = np.arange(num_states)[:, None]
    actions = np.zeros((num_states, 0), dtype=int)
    probabilities = mu.copy()
    for _ in range(horizon):
        last = states[:, -1]
        # every (path, action, next state) triple, flattened path-major
        step = probabilities[:, None, None] * policy[last][:, :, None] * transitions[last]
        count = len(probabilities)
        path_index = np.repeat(np.arange(count), num_actions * num_states)
        action = np.tile(np.repeat(np.arange(num_actions), num_states), count)
        next_state = np.tile(np.arange(num_states), count * num_actions)
        states = np.concatenate([states[path_index], next_state[:, None]], axis=1)
        actions = np.concatenate([actions[path_index], action[:, None]], axis=1)
        probabilities = step.reshape(-1)
    keep = probabilities > 0
    return Paths(states[keep], actions[keep], probabilities[keep])


def finite_difference_gradient(
    f: Callable[[np.ndarray], float], x, *, step: float = 1e-5
) -> np.ndarray:
    """Central finite-difference gradient of a scalar function of an array.

    The error is O(step²)·|f'''| from truncation plus O(eps·|f|/step) from
    round-off; step = 1e-5 balances them at about 1e-10 for smooth functions
    of order-one arguments.
    """
    x = _f64(x)
    gradient = np.empty_like(x)
    for index in np.ndindex(x.shape):
        up, down = x.copy(), x.copy()
        up[index] += step
        down[index] -= step
        gradient[index] = (f(up) - f(down)) / (2 * step)
    return gradient
