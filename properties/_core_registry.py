"""A registry of every callable in `softeq.core.__all__` with a builder of example arguments.

Each `Entry` names a function, fixed static keyword arguments (modes, n,
horizons: they select a program and cannot be traced) and a builder that
turns a NumPy random generator into a `Call`: positional and keyword
arguments of fixed shapes, so that several examples stack into a batch for
`jax.vmap`. The test draws the generator's seed with hypothesis; building the
arrays in NumPy from one seed costs a fraction of drawing every entry through
hypothesis, and these properties (jit = eager, vmap = loop) do not depend on
particular values. Functions with several static modes get one entry per
mode. `HOST_ONLY` lists the callables that inspect concrete values on the host
by design and so are not traceable.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from softeq import core

T, S, A, N, P = 4, 3, 2, 5, 2
"""Fixed sizes: trajectory length, states, actions, NPG samples, parameters."""

Builder = Callable[[np.random.Generator], object]


class Call(NamedTuple):
    args: tuple
    kwargs: dict


class Entry(NamedTuple):
    name: str
    function: Callable
    calls: Callable[[np.random.Generator], Call]
    static: dict = {}  # noqa: RUF012 (read-only default)
    tolerance: float = 1e-12


def _floats(shape, lo=-3.0, hi=3.0) -> Builder:
    return lambda rng: rng.uniform(lo, hi, shape)


def _actions(shape, num_actions=A) -> Builder:
    return lambda rng: rng.integers(0, num_actions, shape)


def _softmax(x):
    z = np.exp(x - x.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def _probabilities(shape) -> Builder:
    return lambda rng: _softmax(rng.uniform(-3.0, 3.0, shape))


def _discounts(shape) -> Builder:
    return lambda rng: rng.choice([0.0, 0.5, 0.9, 0.99], size=shape)


def _uniform(lo, hi) -> Builder:
    return lambda rng: float(rng.uniform(lo, hi))


_TAU: Builder = lambda rng: float(np.exp(rng.uniform(np.log(0.1), np.log(2.0))))  # noqa: E731


def _mdp_leaves() -> Builder:
    """The fields of a random MDP as a dict (they stack into a batch like any pytree)."""

    def build(rng):
        return dict(
            transitions=_softmax(rng.uniform(-4.0, 4.0, (S, A, S))),
            rewards=rng.uniform(-1.0, 1.0, (S, A)),
            discount=np.asarray(rng.uniform(0.0, 0.9)),
            initial_distribution=_softmax(rng.uniform(-4.0, 4.0, (S,))),
        )

    return build


def _c(*args: Builder, **kwargs: Builder) -> Callable[[np.random.Generator], Call]:
    """A builder of Calls whose positional and keyword values come from builders."""

    def build(rng):
        return Call(tuple(a(rng) for a in args), {k: v(rng) for k, v in kwargs.items()})

    return build


def _a2c_args():
    return (_floats((T + 1, A)), _floats((T + 1,)), _actions((T,)), _floats((T,)), _discounts((T,)))


def _stream(k):
    return tuple(_floats((T,)) for _ in range(k))


ENTRIES: tuple[Entry, ...] = (
    Entry(
        "A2CLossExtras",
        core.A2CLossExtras,
        _c(_floats(()), _floats(()), _floats(()), _floats((T,)), _floats((T,))),
    ),
    Entry("TemperatureState", core.TemperatureState, _c(_floats(()))),
    Entry(
        "TabularMDP",
        core.TabularMDP,
        lambda rng: Call((), _mdp_leaves()(rng)),
    ),
    *(
        Entry(
            f"a2c_loss[{mode}]",
            core.a2c_loss,
            _c(
                *_a2c_args(),
                temperature=_TAU,
                value_weight=_uniform(0.1, 2.0),
                log_prior=_floats((A,), -2.0, 0.0),
            ),
            {"n": 2, "entropy": mode},
        )
        for mode in core.ENTROPY_MODES
    ),
    Entry(
        "a2c_matched_soft_q_loss",
        core.a2c_matched_soft_q_loss,
        _c(*_a2c_args(), temperature=_TAU, value_weight=_uniform(0.1, 2.0)),
        {"n": 2},
    ),
    Entry(
        "auto_temperature",
        lambda log_temperature, logits, w_t, **static: core.auto_temperature(**static).update(
            core.TemperatureState(log_temperature), logits, w_t
        ),
        _c(_floats(()), _floats((T, A)), _floats((T,), 0.0, 2.0)),
        {"target_entropy_ratio": 0.9, "learning_rate": 0.1},
    ),
    Entry(
        "auto_temperature_loss",
        core.auto_temperature_loss,
        _c(_floats(()), _floats((T, A)), w_t=_floats((T,), 0.0, 2.0)),
        {"target_entropy_ratio": 0.9},
    ),
    Entry(
        "boltzmann_kl",
        core.boltzmann_kl,
        _c(_floats((A,)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "boltzmann_log_policy",
        core.boltzmann_log_policy,
        _c(_floats((A,)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "boltzmann_policy_table",
        core.boltzmann_policy_table,
        _c(_floats((S, A)), temperature=_TAU, log_prior=_floats((S, A), -2.0, 0.0)),
    ),
    Entry(
        "bootstrap_truncations",
        core.bootstrap_truncations,
        _c(
            _floats((T,)),
            _discounts((T,)),
            lambda rng: (rng.random(T) < 0.3).astype(np.float64),
            _floats((T,)),
        ),
    ),
    Entry(
        "damped_soft_q_targets",
        core.damped_soft_q_targets,
        _c(_floats((T,)), _floats((T,)), epsilon=_uniform(0.01, 1.0)),
    ),
    *(
        Entry(
            f"dqn_bootstrap_value[{mode}]",
            core.dqn_bootstrap_value,
            _c(_floats((A,)), temperature=_TAU),
            {"mode": mode},
        )
        for mode in core.DQN_TARGET_MODES
    ),
    Entry(
        "evaluate_policy",
        lambda policy, leaves, **kw: core.evaluate_policy(policy, core.TabularMDP(**leaves), **kw),
        _c(_probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    Entry(
        "finite_horizon_regularised_objective",
        lambda policy, leaves, **kw: core.finite_horizon_regularised_objective(
            policy, core.TabularMDP(**leaves), **kw
        ),
        _c(_probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
        {"horizon": 3},
    ),
    Entry(
        "kl_divergence",
        core.kl_divergence,
        _c(lambda rng: np.log(_probabilities((A,))(rng)), _floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "munchausen_bellman_backup",
        lambda q, leaves, **kw: core.munchausen_bellman_backup(q, core.TabularMDP(**leaves), **kw),
        _c(_floats((S, A)), _mdp_leaves(), temperature=_TAU, alpha=_uniform(0.0, 1.0)),
    ),
    *(
        Entry(
            f"munchausen_targets[log_policy_clip={clip}]",
            core.munchausen_targets,
            _c(
                _floats((T, A)),
                _actions((T,)),
                _floats((T,)),
                _discounts((T,)),
                _floats((T, A)),
                temperature=_TAU,
                alpha=_uniform(0.0, 1.0),
            ),
            {"log_policy_clip": clip},
        )
        for clip in (-1.0, None)
    ),
    *(
        Entry(
            f"natural_gradient_direction[damping={damping}]",
            core.natural_gradient_direction,
            _c(_floats((N, P)), _floats((N,))),
            {"damping": damping},
            # least squares: round-off grows with the condition number of the
            # random [5, 2] score matrix (rarely above 1e3).
            1e-9,
        )
        for damping in (0.0, 0.1)
    ),
    Entry("policy_entropy", core.policy_entropy, _c(_floats((A,)))),
    Entry(
        "policy_kl",
        core.policy_kl,
        _c(_floats((A,)), log_prior=_floats((A,), -2.0, 0.0)),
    ),
    *(
        Entry(
            f"policy_soft_value[log_prior={kind}]",
            core.policy_soft_value,
            _c(
                _floats((A,)),
                lambda rng: np.log(_probabilities((A,))(rng)),
                temperature=_TAU,
                **({"log_prior": _floats((A,), -2.0, 0.0)} if kind == "array" else {}),
            ),
            {} if kind == "array" else {"log_prior": kind},
        )
        for kind in ("array", *core.LOG_PRIOR_CONVENTIONS)
    ),
    Entry(
        "regularised_npg_advantages",
        core.regularised_npg_advantages,
        _c(*_stream(4), temperature=_TAU),
    ),
    Entry(
        "regularised_objective",
        lambda policy, leaves, **kw: core.regularised_objective(
            policy, core.TabularMDP(**leaves), **kw
        ),
        _c(_probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    Entry(
        "regularised_policy_gradient_loss",
        core.regularised_policy_gradient_loss,
        _c(
            _floats((T, A)),
            _actions((T,)),
            _floats((T,)),
            temperature=_TAU,
            log_prior=_floats((A,), -2.0, 0.0),
        ),
    ),
    Entry(
        "sac_actor_loss",
        core.sac_actor_loss,
        _c(*(_floats((T, A)) for _ in range(3)), temperature=_TAU, w_t=_floats((T,), 0.0, 2.0)),
    ),
    Entry(
        "sac_critic_targets",
        core.sac_critic_targets,
        _c(_floats((T,)), _discounts((T,)), *(_floats((T, A)) for _ in range(3)), temperature=_TAU),
    ),
    Entry("scale_gradient", core.scale_gradient, _c(_floats((T,)), _floats(()))),
    Entry(
        "soft_bellman_backup",
        lambda q, leaves, **kw: core.soft_bellman_backup(q, core.TabularMDP(**leaves), **kw),
        _c(_floats((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    *(
        Entry(
            f"soft_dqn_targets[{mode}]",
            core.soft_dqn_targets,
            _c(_floats((T,)), _discounts((T,)), _floats((T, A)), temperature=_TAU),
            {"mode": mode, "n": 2},
        )
        for mode in core.DQN_TARGET_MODES
    ),
    Entry(
        "soft_lambda_advantages",
        core.soft_lambda_advantages,
        _c(
            _floats((T,)),
            _discounts((T,)),
            *_stream(2),
            _floats((T,), 0.0, 2.0),
            _floats((T,), 0.0, 2.0),
            temperature=_TAU,
            lambda_=_uniform(0.0, 1.0),
        ),
    ),
    *(
        Entry(
            f"soft_lambda_returns[lambda_={shape}]",
            core.soft_lambda_returns,
            _c(
                _floats((T,)),
                _discounts((T,)),
                _floats((T,)),
                _floats((T,), 0.0, 2.0),
                temperature=_TAU,
                lambda_=_floats(shape, 0.0, 1.0),
            ),
        )
        for shape in ((), (T,))
    ),
    Entry(
        "soft_n_step_advantages",
        core.soft_n_step_advantages,
        _c(
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
        _c(
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
        _c(_floats((S, A)), _probabilities((S, A)), _mdp_leaves(), temperature=_TAU),
    ),
    Entry(
        "soft_q_learning",
        core.soft_q_learning,
        _c(
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
        _c(
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
        _c(_floats((T,)), _discounts((T,)), *_stream(2), _floats((T,), 0.0, 2.0), temperature=_TAU),
    ),
    Entry(
        "soft_value",
        core.soft_value,
        _c(_floats((A,)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry(
        "soft_value[log_prior=entropy]",
        core.soft_value,
        _c(_floats((A,)), temperature=_TAU),
        {"log_prior": "entropy"},
    ),
    Entry(
        "soft_value_iteration",
        lambda leaves, **kw: core.soft_value_iteration(core.TabularMDP(**leaves), **kw),
        _c(_mdp_leaves(), temperature=_TAU),
        {"tolerance": 1e-10},
        # iteration stops once a backup moves Q by ≤ 1e-10; jit and eager may
        # stop one backup apart, i.e. differ by ≤ 1e-10·γ/(1 − γ) ≤ 1e-9.
        1e-8,
    ),
    Entry(
        "tabular_soft_values",
        core.tabular_soft_values,
        _c(_floats((S, A)), temperature=_TAU, log_prior=_floats((A,), -2.0, 0.0)),
    ),
    Entry("value_loss", core.value_loss, _c(_floats((T,)), _floats((T,)))),
)
"""Every traceable public callable of softeq.core, with example builders."""

HOST_ONLY: dict[str, str] = {
    "AutoTemperature": "a record of two functions (init, update), built once on the host by "
    "`auto_temperature`; its update is traced through the `auto_temperature` entry",
    "validate_tabular_mdp": "checks concrete arrays with NumPy and raises ValueError; "
    "TabularMDP calls it only for concrete leaves",
}
"""Public callables that run on the host only, with the reason."""


def covered_names() -> set[str]:
    """Names in `softeq.core.__all__` that the registry covers."""
    names = {entry.name.split("[")[0] for entry in ENTRIES}
    return names | set(HOST_ONLY)
