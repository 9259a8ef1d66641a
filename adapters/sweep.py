"""Hyperparameter sweeps inside one jitted program: which fields may differ between its slots.

A jitted program (`softeq.adapters.jit_loop.SeededProgram`) vmaps one run over
*slots*; a slot is a seed, or a (hyperparameter value, seed) pair. A field can
vary between slots without recompiling only if the traced program reads it as
an array: it must not fix a shape (`num_steps`, `n_step`, `batch_size`),
choose a Python branch (`entropy`, `optimizer`, `dueling`) or build a schedule
(`learning_rate`, `lr_decay_steps`). Float fields pass that test when every use
of them inside a traced learner update is arithmetic (the core functions they
reach check a temperature only when it is a Python number:
`softeq.core._checks.check_temperature` lets a tracer through). A string field
passes it when the update uses it only to pick one of a few computations of
the same shapes (DQN's `target`): a slot then holds the index of its choice
and the update switches on it (`jax.lax.switch`; under vmap every choice is
computed and each slot keeps its own).

    sweepable_fields(config)         the fields that may differ between slots (registry)
    batch_key(config)                equal for configs that can share one program
    sweep_values(configs)            {field: [S] array} of the fields that differ
    with_traced_fields(config, values)  the config whose fields hold traced values

Where a field is read outside the learner update (the network, the optimiser,
the behaviour policy, evaluation), it is not listed here.
"""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np


def sweepable_fields(config: Any) -> tuple[str, ...]:
    """The fields of `config` that may differ between the slots of one program: the
    `sweepable` and `sweepable_choices` fields of the registry entry whose config
    class `config` is (a2c and soft-q read τ and c only in their losses, dqn and
    mdqn τ only in their targets, dqn its target mode only to pick the target; an
    entry that lists none sweeps nothing: each value is its own program)."""
    floats, choices = _swept(config)
    return floats + tuple(choices)


def _swept(config: Any) -> tuple[tuple[str, ...], Mapping[str, tuple[str, ...]]]:
    """(`sweepable`, `sweepable_choices`) of the registry entry whose config class
    `config` is; none of either for a config no entry owns."""
    from softeq.adapters.agents import registry

    for name in registry.algorithm_names():
        entry = registry.get_algorithm(name)
        if type(config) is entry.config_class:
            return entry.sweepable, entry.sweepable_choices
    return (), {}


def batch_key(config: Any) -> tuple:
    """A key equal for two configs exactly when they can train in one program.

    The config's class and every field that is not sweepable (those fix shapes,
    branches or schedules of the compiled program).
    """
    swept = set(sweepable_fields(config))
    fixed = tuple(
        (f.name, getattr(config, f.name)) for f in dataclasses.fields(config) if f.name not in swept
    )
    return (type(config), fixed)


def sweep_values(configs: Sequence[Any]) -> dict[str, np.ndarray]:
    """`{field: [S]}` of the sweepable fields whose values differ between `configs`:
    float32 values, or for a choice field (`sweepable_choices`) the int32 index of
    each value in its choices.

    Args:
      configs: one config per slot, all with the same `batch_key`.

    Raises:
      ValueError: the configs differ in a field that is not sweepable.
    """
    if not configs:
        raise ValueError("`configs` must hold at least one config, got none.")
    keys = {batch_key(c) for c in configs}
    if len(keys) != 1:
        raise ValueError(
            f"`configs` differ in fields that fix the program (not in "
            f"{sweepable_fields(configs[0])}); they cannot share one program."
        )
    floats, choices_of = _swept(configs[0])
    values = {}
    for name in floats:
        column = [float(getattr(c, name)) for c in configs]
        if len(set(column)) > 1:
            values[name] = np.asarray(column, np.float32)
    for name, choices in choices_of.items():
        column = [choices.index(getattr(c, name)) for c in configs]
        if len(set(column)) > 1:
            values[name] = np.asarray(column, np.int32)
    return values


def with_traced_fields(config: Any, values: Mapping[str, Any]) -> Any:
    """A copy of the frozen `config` whose fields `values` hold (traced) arrays.

    The concrete values were validated on the host when each slot's config was
    built; here the fields hold tracers, which `__post_init__`'s checks (Python
    comparisons on numbers) cannot take. So the dataclass is copied without
    running them and the fields are set with `object.__setattr__`, which a frozen
    dataclass permits on a fresh copy. The result lives only inside one trace.

    Raises:
      ValueError: a field of `values` is not sweepable for this config.
    """
    allowed = sweepable_fields(config)
    unknown = sorted(set(values) - set(allowed))
    if unknown:
        raise ValueError(
            f"`values` names {unknown}, which {type(config).__name__} cannot sweep inside one "
            f"program; allowed: {list(allowed)}."
        )
    traced = copy.copy(config)
    for name, value in values.items():
        object.__setattr__(traced, name, value)
    return traced
