"""A registry of every callable in `softeq.core.__all__` with a builder of example arguments.

Each `Entry` names a function, fixed static keyword arguments (modes, n,
horizons: they select a program and cannot be traced) and a hypothesis
strategy of `Call`s: positional and keyword arguments with fixed shapes, so
that several examples stack into a batch for `jax.vmap`. Functions with
several static modes get one entry per mode. `HOST_ONLY` lists the callables
that inspect concrete values on the host by design and so are not traceable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from hypothesis import strategies as st

from softeq import core
from softeq.properties import strategies as sqst

T, S, A, N, P = 4, 3, 2, 5, 2
"""Fixed sizes: trajectory length, states, actions, NPG samples, parameters."""


class Call(NamedTuple):
    args: tuple
    kwargs: dict


class Entry(NamedTuple):
    name: str
    function: Callable
    calls: Callable[[], st.SearchStrategy]
    static: dict = {}  # noqa: RUF012 (read-only default)
    tolerance: float = 1e-12


def _floats(shape, lo=-3.0, hi=3.0):
    return sqst.float_arrays(shape, min_value=lo, max_value=hi)


def _actions(shape, num_actions=A):
    return st.lists(
        st.integers(0, num_actions - 1), min_size=int(np.prod(shape)), max_size=int(np.prod(shape))
    ).map(lambda xs: np.asarray(xs, np.int64).reshape(shape))


def _probabilities(shape):
    return _floats(shape, -3.0, 3.0).map(
        lambda x: (
            np.exp(x - x.max(-1, keepdims=True))
            / np.exp(x - x.max(-1, keepdims=True)).sum(-1, keepdims=True)
        )
    )


def _discounts(shape):
    gamma = st.sampled_from([0.0, 0.5, 0.9, 0.99])
    return st.lists(gamma, min_size=shape[0], max_size=shape[0]).map(np.asarray)


_TAU = sqst.temperatures(min_value=0.1, max_value=2.0).map(np.float64)
_MDP = sqst.tabular_mdps(
    min_states=S, max_states=S, min_actions=A, max_actions=A, discount=sqst.discounts(max_value=0.9)
)


@st.composite
def _c(draw, *args, **kwargs):
    """A Call whose positional and keyword values are drawn from strategies."""
    return Call(tuple(draw(a) for a in args), {k: draw(v) for k, v in kwargs.items()})


def _mdp_leaves():
    """The fields of a random MDP as a dict (they stack into a batch like any pytree)."""
    return _MDP.map(
        lambda m: dict(
            transitions=m.transitions,
            rewards=m.rewards,
            discount=m.discount,
            initial_distribution=m.initial_distribution,
        )
    )


def _a2c_args():
    return (_floats((T + 1, A)), _floats((T + 1,)), _actions((T,)), _floats((T,)), _discounts((T,)))


def _stream(k):
    return tuple(_floats((T,)) for _ in range(k))


ENTRIES: tuple[Entry, ...] = (
    Entry(
        "A2CLossExtras",
        core.A2CLossExtras,
        lambda: _c(_floats(()), _floats(()), _floats(()), _floats((T,)), _floats((T,))),
    ),
    Entry(
        "TabularMDP",
        core.TabularMDP,
        lambda: _mdp_leaves().map(lambda leaves: Call((), leaves)),
    ),
    *(
        Entry(
            f"a2c_loss[{mode}]",
            core.a2c_loss,
            lambda: _c(
                *_a2c_args(),
                temperature=_TAU,
                value_weight=st.floats(0.1, 2.0),
                log_prior=_floats((A,), -2.0, 0.0),
            ),
            {"n": 2, "entropy": mode},
        )
        for mode in core.ENTROPY_MODES
    ),
    Entry(
        "a2c_matched_soft_q_loss",
        core.a2c_matched_soft_q_loss,
        lambda: _c(*_a2c_args(), temperature=_TAU, value_weight=st.floats(0.1, 2.0)),
        {"n": 2},
    ),
    Entry(
        "boltzmann_kl",
        core.boltzmann_kl,
        lambda: _c(_floats((A,)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "boltzmann_log_policy",
        core.boltzmann_log_policy,
        lambda: _c(_floats((A,)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "boltzmann_policy_table",
        core.boltzmann_policy_table,
        lambda: _c(_floats((S, A)), temperature=_TAU, log_prior=_floats((S, A), -2.0, 0.0)),
    ),
    Entry(
        "damped_soft_q_targets",
        core.damped_soft_q_targets,
        lambda: _c(_floats((T,)), _floats((T,)), epsilon=st.floats(0.01, 1.0)),
    ),
    *(
        Entry(
            f"dqn_bootstrap_value[{mode}]",
            core.dqn_bootstrap_value,
            lambda: _c(_floats((A,)), temperature=_TAU),
            {"mode": mode},
        )
        for mode in core.DQN_TARGET_MODES
    ),
    Entry(
        "evaluate_policy",
        lambda policy, leaves, **kw: core.evaluate_policy(policy, core.TabularMDP(**leaves), **kw),
        lambda: _c(_probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    Entry(
        "finite_horizon_regularised_objective",
        lambda policy, leaves, **kw: core.finite_horizon_regularised_objective(
            policy, core.TabularMDP(**leaves), **kw
        ),
        lambda: _c(_probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
        {"horizon": 3},
    ),
    Entry(
        "kl_divergence",
        core.kl_divergence,
        lambda: _c(_probabilities((A,)).map(np.log), _floats((A,), -2.0, 0.0)),
    ),
    *(
        Entry(
            f"natural_gradient_direction[damping={damping}]",
            core.natural_gradient_direction,
            lambda: _c(_floats((N, P)), _floats((N,))),
            {"damping": damping},
            # least squares: round-off grows with the condition number of the
            # random [5, 2] score matrix (rarely above 1e3).
            1e-9,
        )
        for damping in (0.0, 0.1)
    ),
    Entry(
        "policy_kl",
        core.policy_kl,
        lambda: _c(_floats((A,)), log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "regularised_npg_advantages",
        core.regularised_npg_advantages,
        lambda: _c(*_stream(4), temperature=_TAU),
    ),
    Entry(
        "regularised_objective",
        lambda policy, leaves, **kw: core.regularised_objective(
            policy, core.TabularMDP(**leaves), **kw
        ),
        lambda: _c(_probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    Entry(
        "regularised_policy_gradient_loss",
        core.regularised_policy_gradient_loss,
        lambda: _c(
            _floats((T, A)),
            _actions((T,)),
            _floats((T,)),
            temperature=_TAU,
            log_prior=_floats((A,), -2.0, 0.0),
        ),
    ),
    Entry("scale_gradient", core.scale_gradient, lambda: _c(_floats((T,)), _floats(()))),
    Entry(
        "soft_bellman_backup",
        lambda q, leaves, **kw: core.soft_bellman_backup(q, core.TabularMDP(**leaves), **kw),
        lambda: _c(_floats((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    *(
        Entry(
            f"soft_dqn_targets[{mode}]",
            core.soft_dqn_targets,
            lambda: _c(_floats((T,)), _discounts((T,)), _floats((T, A)), temperature=_TAU),
            {"mode": mode, "n": 2},
        )
        for mode in core.DQN_TARGET_MODES
    ),
    Entry(
        "soft_n_step_advantages",
        core.soft_n_step_advantages,
        lambda: _c(
            _floats((T,)),
            _discounts((T,)),
            *_stream(2),
            _floats((T,), 0.0, 2.0),
            _floats((T,), 0.0, 2.0),
            temperature=_TAU,
        ),
        {"n": 3},
    ),
    Entry(
        "soft_n_step_targets",
        core.soft_n_step_targets,
        lambda: _c(
            _floats((T,)),
            _discounts((T,)),
            _floats((T,)),
            _floats((T,), 0.0, 2.0),
            temperature=_TAU,
        ),
        {"n": 3},
    ),
    Entry(
        "soft_policy_evaluation_backup",
        lambda q, policy, leaves, **kw: core.soft_policy_evaluation_backup(
            q, policy, core.TabularMDP(**leaves), **kw
        ),
        lambda: _c(_floats((S, A)), _probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    Entry(
        "soft_q_learning",
        core.soft_q_learning,
        lambda: _c(
            _floats((A,)),
            _actions(()),
            _floats(()),
            _floats((), 0.0, 1.0),
            _floats((A,)),
            temperature=_TAU,
        ),
    ),
    Entry(
        "soft_q_learning_loss",
        core.soft_q_learning_loss,
        lambda: _c(
            _floats((T, A)),
            _actions((T,)),
            _floats((T,)),
            _discounts((T,)),
            _floats((T, A)),
            temperature=_TAU,
            log_prior=_floats((A,), -2.0, 0.0),
        ),
        {"n": 2},
    ),
    Entry(
        "soft_td_errors",
        core.soft_td_errors,
        lambda: _c(
            _floats((T,)), _discounts((T,)), *_stream(2), _floats((T,), 0.0, 2.0), temperature=_TAU
        ),
    ),
    Entry(
        "soft_value",
        core.soft_value,
        lambda: _c(_floats((A,)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "soft_value_iteration",
        lambda leaves, **kw: core.soft_value_iteration(core.TabularMDP(**leaves), **kw),
        lambda: _c(_mdp_leaves(), temperature=_TAU),
        {"tolerance": 1e-10},
        # iteration stops once a backup moves Q by ≤ 1e-10; jit and eager may
        # stop one backup apart, i.e. differ by ≤ 1e-10·γ/(1 − γ) ≤ 1e-9.
        1e-8,
    ),
    Entry(
        "tabular_soft_values",
        core.tabular_soft_values,
        lambda: _c(_floats((S, A)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry("value_loss", core.value_loss, lambda: _c(_floats((T,)), _floats((T,)))),
)
"""Every traceable public callable of softeq.core, with example builders."""

HOST_ONLY: dict[str, str] = {
    "validate_tabular_mdp": "checks concrete arrays with NumPy and raises ValueError; "
    "TabularMDP calls it only for concrete leaves",
}
"""Public callables that run on the host only, with the reason."""


def covered_names() -> set[str]:
    """Names in `softeq.core.__all__` that the registry covers."""
    names = {entry.name.split("[")[0] for entry in ENTRIES}
    return names | set(HOST_ONLY)
