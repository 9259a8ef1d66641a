"""Every public function of softeq.core gives the same result eagerly and under `jax.jit`,
and `jax.vmap` over a batch equals a loop over its examples.

The registry in `_core_registry.py` pairs each callable of
`softeq.core.__all__` (one entry per static mode) with a builder of example
arguments of fixed shapes (NumPy, from a seed that hypothesis draws); a test
asserts that it covers every callable. Each example checks one call eagerly
against jit, and a batch of 3 under jit(vmap) against the single calls.
Here `jax.jit` is plain (default XLA options), as users call it.

Tolerance: 1e-12 relative to (1 + |output|) by default: eager execution runs
the same XLA kernels op by op, and fusion under jit only reorders float64
round-off. Entries whose outputs come from least squares or from an
iteration with a stopping rule carry a wider, justified tolerance in the
registry.
"""

from __future__ import annotations

import functools

import jax
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from softeq import core
from softeq.properties import strategies as sqst
from softeq.properties._core_registry import ENTRIES, HOST_ONLY, Entry, covered_names

BATCH = 3


def test_registry_covers_every_public_callable_of_core():
    public_callables = {name for name in core.__all__ if callable(getattr(core, name))}
    assert covered_names() == public_callables
    # the rest of __all__ are the tuples of allowed mode names.
    for name in set(core.__all__) - public_callables:
        value = getattr(core, name)
        assert isinstance(value, tuple) and all(isinstance(v, str) for v in value), name


_PROGRAMS: dict[str, tuple] = {}


def _programs(entry: Entry):
    """(eager, jitted, jitted-vmapped) versions of an entry, built once per entry."""
    if entry.name not in _PROGRAMS:
        function = functools.partial(entry.function, **entry.static)

        def call(args, kwargs):
            return function(*args, **kwargs)

        _PROGRAMS[entry.name] = (call, jax.jit(call), jax.jit(jax.vmap(call)))
    return _PROGRAMS[entry.name]


def _assert_trees_close(actual, expected, *, tolerance: float, what: str):
    actual_leaves = jax.tree_util.tree_leaves(actual)
    expected_leaves = jax.tree_util.tree_leaves(expected)
    assert jax.tree_util.tree_structure(actual) == jax.tree_util.tree_structure(expected), what
    for a, e in zip(actual_leaves, expected_leaves, strict=True):
        a, e = np.asarray(a), np.asarray(e)
        assert a.shape == e.shape, what
        scale = 1.0 + float(np.max(np.abs(e), initial=0.0))
        np.testing.assert_allclose(a, e, rtol=0, atol=tolerance * scale, err_msg=what)


@pytest.mark.parametrize("entry", ENTRIES, ids=lambda entry: entry.name)
def test_jit_equals_eager_and_vmap_equals_a_loop(entry: Entry):
    @given(seed=st.integers(0, 2**63 - 1))
    def agrees(seed):
        calls = [entry.calls(np.random.default_rng([seed, i])) for i in range(BATCH)]
        eager_call, jitted, vmapped = _programs(entry)
        first = calls[0]
        _assert_trees_close(
            jitted(first.args, first.kwargs),
            eager_call(first.args, first.kwargs),
            tolerance=entry.tolerance,
            what=f"{entry.name}: jit vs eager",
        )
        stacked = jax.tree_util.tree_map(
            lambda *xs: np.stack(xs), *[(c.args, c.kwargs) for c in calls]
        )
        batched = vmapped(*stacked)
        for i, c in enumerate(calls):
            _assert_trees_close(
                jax.tree_util.tree_map(lambda x, i=i: x[i], batched),
                jitted(c.args, c.kwargs),
                tolerance=entry.tolerance,
                what=f"{entry.name}: vmap row {i} vs a single call",
            )

    agrees()


@given(mdp=sqst.tabular_mdps(), row=st.integers(0, 2), factor=st.floats(1.01, 2.0))
def test_validate_tabular_mdp_is_host_only_and_rejects_unnormalised_rows(mdp, row, factor):
    assert "validate_tabular_mdp" in HOST_ONLY
    assert core.validate_tabular_mdp(mdp) is None
    broken = np.array(mdp.transitions)
    broken[row % mdp.num_states, 0] *= factor
    with pytest.raises(ValueError, match="transitions"):
        core.TabularMDP(
            transitions=broken,
            rewards=mdp.rewards,
            discount=mdp.discount,
            initial_distribution=mdp.initial_distribution,
        )
    # on traced values it cannot run: it reads concrete arrays by design.
    with pytest.raises(jax.errors.TracerArrayConversionError):
        jax.jit(core.validate_tabular_mdp)(mdp)
