"""Hypothesis strategies that build valid RL objects by construction.

Nothing is filtered: probability vectors are softmaxes of bounded float
logits (computed in NumPy float64), temperatures are exponentials of a
bounded log, episode ends are placed, not rejected. Shapes come from small
fixed menus (`STATE_MENU`, `ACTION_MENU`, `FEATURE_MENU`, `LENGTH_MENU`) so
that jitted functions see only a few shapes and compile once per shape.

The primary objects a strategy builds on (an MDP, a policy, a shape) are
positional; every other option is keyword-only. All arrays are NumPy float64
(int64 for indices).

Example:
  >>> import numpy as np
  >>> from hypothesis import given
  >>> from softeq.properties import strategies as sqst
  >>> @given(sqst.tabular_mdps(max_states=3, max_actions=2))
  ... def test_rows_are_distributions(mdp):
  ...     np.testing.assert_allclose(mdp.transitions.sum(-1), 1.0, rtol=0, atol=1e-12)
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from softeq.core import TabularMDP

__all__ = [
    "ACTION_MENU",
    "FEATURE_MENU",
    "LENGTH_MENU",
    "LOG_PRIOR_KINDS",
    "STATE_MENU",
    "SoftStream",
    "Trajectory",
    "discounts",
    "float_arrays",
    "linear_feature_maps",
    "log_priors",
    "policies",
    "q_tables",
    "soft_streams",
    "tabular_mdps",
    "temperatures",
    "terminal_states",
    "trajectories",
]

STATE_MENU = (2, 3)
"""Numbers of states the MDP strategies draw from."""
ACTION_MENU = (2, 3)
"""Numbers of actions the strategies draw from."""
FEATURE_MENU = (2, 3)
"""Feature dimensions of `linear_feature_maps`."""
LENGTH_MENU = (3, 5)
"""Trajectory lengths of `soft_streams` when no length is given."""
LOG_PRIOR_KINDS = ("uniform", "entropy", "normalised", "unnormalised")
"""Kinds of reference policy π̄ that `log_priors` draws from (see there)."""


def _menu(menu: tuple[int, ...], lo: int, hi: int, *, name: str) -> list[int]:
    choices = [size for size in menu if lo <= size <= hi]
    if not choices:
        raise ValueError(f"no size in {menu} lies in [{lo}, {hi}]; adjust `{name}`.")
    return choices


def _softmax(logits: np.ndarray) -> np.ndarray:
    z = np.exp(logits - logits.max(axis=-1, keepdims=True))
    return z / z.sum(axis=-1, keepdims=True)


def _log_softmax(logits: np.ndarray) -> np.ndarray:
    shifted = logits - logits.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


@st.composite
def float_arrays(draw, shape: tuple[int, ...], *, min_value: float, max_value: float) -> np.ndarray:
    """float64 arrays of `shape` with every entry drawn independently in [min_value, max_value]."""
    elements = st.floats(
        min_value, max_value, allow_nan=False, allow_infinity=False, allow_subnormal=False
    )
    return draw(hnp.arrays(np.float64, shape, elements=elements, fill=st.nothing()))


@st.composite
def discounts(draw, *, min_value: float = 0.0, max_value: float = 0.95) -> float:
    """Discounts γ in [min_value, max_value] (a Python float)."""
    if not 0.0 <= min_value <= max_value <= 1.0:
        raise ValueError(
            f"discount range must satisfy 0 <= min_value <= max_value <= 1, "
            f"got [{min_value}, {max_value}]."
        )
    return draw(st.floats(min_value, max_value, allow_nan=False))


@st.composite
def temperatures(draw, *, min_value: float = 0.05, max_value: float = 5.0) -> float:
    """Temperatures τ drawn log-uniformly in [min_value, max_value] (a Python float)."""
    if not 0.0 < min_value <= max_value:
        raise ValueError(
            f"temperature range must satisfy 0 < min_value <= max_value, "
            f"got [{min_value}, {max_value}]."
        )
    log_tau = draw(st.floats(math.log(min_value), math.log(max_value), allow_nan=False))
    return float(min(max(math.exp(log_tau), min_value), max_value))


@st.composite
def tabular_mdps(
    draw,
    *,
    max_states: int = 3,
    max_actions: int = 3,
    min_states: int = 2,
    min_actions: int = 2,
    discount: float | st.SearchStrategy | None = None,
    reward_scale: float = 1.0,
    logit_scale: float = 4.0,
) -> TabularMDP:
    """Finite MDPs with strictly positive, normalised transition rows.

    Args:
      max_states: upper bound on S, drawn from `STATE_MENU`.
      max_actions: upper bound on A, drawn from `ACTION_MENU`.
      min_states: lower bound on S.
      min_actions: lower bound on A.
      discount: a fixed γ, a strategy for γ, or None for `discounts()`.
      reward_scale: rewards are drawn in [−reward_scale, reward_scale].
      logit_scale: transition rows and μ are softmaxes of logits in
        [−logit_scale, logit_scale], so no probability is below e^(−2·logit_scale)/S.

    Returns:
      `softeq.core.TabularMDP` with NumPy float64 leaves: transitions `[S, A, S]`,
      rewards `[S, A]`, discount `[]`, initial_distribution `[S]`.
    """
    num_states = draw(st.sampled_from(_menu(STATE_MENU, min_states, max_states, name="max_states")))
    num_actions = draw(
        st.sampled_from(_menu(ACTION_MENU, min_actions, max_actions, name="max_actions"))
    )
    if discount is None:
        gamma = draw(discounts())
    elif isinstance(discount, st.SearchStrategy):
        gamma = draw(discount)
    else:
        gamma = discount
    transition_logits = draw(
        float_arrays(
            (num_states, num_actions, num_states), min_value=-logit_scale, max_value=logit_scale
        )
    )
    initial_logits = draw(
        float_arrays((num_states,), min_value=-logit_scale, max_value=logit_scale)
    )
    rewards = draw(
        float_arrays((num_states, num_actions), min_value=-reward_scale, max_value=reward_scale)
    )
    return TabularMDP(
        transitions=_softmax(transition_logits),
        rewards=rewards,
        discount=np.asarray(gamma, np.float64),
        initial_distribution=_softmax(initial_logits),
    )


@st.composite
def policies(draw, mdp: TabularMDP, *, logit_scale: float = 4.0) -> np.ndarray:
    """`[S, A]` stochastic policies of `mdp` with full support (softmax of bounded logits)."""
    logits = draw(
        float_arrays(
            (mdp.num_states, mdp.num_actions), min_value=-logit_scale, max_value=logit_scale
        )
    )
    return _softmax(logits)


@st.composite
def q_tables(draw, shape: tuple[int, ...], *, scale: float = 3.0) -> np.ndarray:
    """Q-tables (or any score arrays) of `shape` with entries in [−scale, scale]."""
    return draw(float_arrays(tuple(shape), min_value=-scale, max_value=scale))


@st.composite
def log_priors(
    draw,
    num_actions: int,
    *,
    num_states: int | None = None,
    kind: str | None = None,
    scale: float = 2.0,
) -> np.ndarray:
    """log π̄ as `[A]` (or `[S, A]` when `num_states` is given).

    Kinds: "uniform" (log 1/A), "entropy" (0: π̄ ≡ 1, the entropy-bonus
    convention), "normalised" (log-softmax of logits in [−scale, scale]) and
    "unnormalised" (any log-weights in [−scale, scale]). `kind=None` draws one.
    """
    if kind is None:
        kind = draw(st.sampled_from(LOG_PRIOR_KINDS))
    if kind not in LOG_PRIOR_KINDS:
        raise ValueError(f"`kind` must be one of {LOG_PRIOR_KINDS} or None, got {kind!r}.")
    shape = (num_actions,) if num_states is None else (num_states, num_actions)
    if kind == "uniform":
        return np.full(shape, -math.log(num_actions))
    if kind == "entropy":
        return np.zeros(shape)
    logits = draw(float_arrays(shape, min_value=-scale, max_value=scale))
    return _log_softmax(logits) if kind == "normalised" else logits


@st.composite
def terminal_states(draw, num_states: int) -> np.ndarray:
    """`[S]` bool flags of absorbing-for-the-learner states (entering one ends the episode)."""
    return draw(hnp.arrays(np.bool_, (num_states,), elements=st.booleans(), fill=st.nothing()))


@st.composite
def linear_feature_maps(
    draw,
    num_states: int,
    num_actions: int,
    *,
    num_features: int | None = None,
    scale: float = 1.0,
) -> np.ndarray:
    """`[S, A, F]` features φ(s, a) with entries in [−scale, scale]; F from `FEATURE_MENU`."""
    if num_features is None:
        num_features = draw(st.sampled_from(FEATURE_MENU))
    return draw(
        float_arrays((num_states, num_actions, num_features), min_value=-scale, max_value=scale)
    )


class Trajectory(NamedTuple):
    """One sampled trajectory of T transitions, in the rlax alignment.

    Attributes:
      states: `[T + 1]` s_0 … s_T.
      actions: `[T]` a_0 … a_{T−1}.
      rewards: `[T]` r(s_i, a_i).
      discounts: `[T]` γ·(1 − terminal_{i+1}).
      terminals: `[T]` whether the episode ended on entering s_{i+1}.
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    discounts: np.ndarray
    terminals: np.ndarray


def _inverse_cdf(probabilities: np.ndarray, u: float) -> int:
    index = int(np.searchsorted(np.cumsum(probabilities), u, side="right"))
    return min(index, len(probabilities) - 1)


@st.composite
def _episode_ends(draw, length: int, *, episode_end: bool) -> np.ndarray:
    terminals = draw(hnp.arrays(np.bool_, (length,), elements=st.booleans(), fill=st.nothing()))
    if episode_end and length >= 2:
        # at least one episode end strictly inside the window, so that sums
        # and bootstraps are cut before the window runs out.
        terminals[draw(st.integers(0, length - 2))] = True
    return terminals


@st.composite
def trajectories(
    draw, mdp: TabularMDP, policy: np.ndarray, length: int, *, episode_end: bool = True
) -> Trajectory:
    """Trajectories of `length` steps of `mdp` under `policy`, sampled by inverse CDF.

    s_0 ∼ μ, a_i ∼ π(·|s_i), s_{i+1} ∼ P(·|s_i, a_i), each from a hypothesis
    float in [0, 1), so every trajectory has positive probability. With
    `episode_end` (and length ≥ 2) at least one episode ends inside the window.
    """
    if length < 1:
        raise ValueError(f"`length` must be >= 1, got {length!r}.")
    uniform = st.floats(0.0, 1.0, exclude_max=True, allow_nan=False)
    transitions = np.asarray(mdp.transitions)
    state = _inverse_cdf(np.asarray(mdp.initial_distribution), draw(uniform))
    states, actions = [state], []
    for _ in range(length):
        action = _inverse_cdf(np.asarray(policy)[state], draw(uniform))
        state = _inverse_cdf(transitions[state, action], draw(uniform))
        actions.append(action)
        states.append(state)
    states, actions = np.array(states), np.array(actions)
    terminals = draw(_episode_ends(length, episode_end=episode_end))
    rewards = np.asarray(mdp.rewards)[states[:-1], actions]
    discounts_t = float(mdp.discount) * (1.0 - terminals)
    return Trajectory(states, actions, rewards, discounts_t, terminals)


class SoftStream(NamedTuple):
    """The per-step inputs of n-step soft targets for one trajectory of T transitions.

    Attributes:
      r_t: `[T]` rewards.
      discount_t: `[T]` γ·(1 − terminal_{i+1}); some are 0 (episode ends).
      values: `[T + 1]` V(s_0) … V(s_T) (any numbers).
      kls: `[T + 1]` KL(s_0) … KL(s_T) (≥ 0).
    """

    r_t: np.ndarray
    discount_t: np.ndarray
    values: np.ndarray
    kls: np.ndarray

    @property
    def v_tm1(self) -> np.ndarray:
        return self.values[:-1]

    @property
    def v_t(self) -> np.ndarray:
        return self.values[1:]

    @property
    def kl_tm1(self) -> np.ndarray:
        return self.kls[:-1]

    @property
    def kl_t(self) -> np.ndarray:
        return self.kls[1:]


@st.composite
def soft_streams(
    draw,
    *,
    length: int | None = None,
    discount: float | None = None,
    episode_end: bool = True,
    scale: float = 3.0,
) -> SoftStream:
    """Reward, discount, value and KL streams with episode ends inside the window.

    Args:
      length: T, or None to draw from `LENGTH_MENU`.
      discount: a fixed γ, or None for `discounts(max_value=1.0)`.
      episode_end: put at least one zero discount strictly inside the window.
      scale: rewards and values lie in [−scale, scale], KLs in [0, scale].
    """
    if length is None:
        length = draw(st.sampled_from(LENGTH_MENU))
    gamma = draw(discounts(max_value=1.0)) if discount is None else discount
    terminals = draw(_episode_ends(length, episode_end=episode_end))
    return SoftStream(
        r_t=draw(float_arrays((length,), min_value=-scale, max_value=scale)),
        discount_t=gamma * (1.0 - terminals),
        values=draw(float_arrays((length + 1,), min_value=-scale, max_value=scale)),
        kls=draw(float_arrays((length + 1,), min_value=0.0, max_value=scale)),
    )
