"""Is the learner as fast as the hardware allows? Four checks with numbers.

1. Donation: `agent.learner_update` donates its state (parameters and
   optimiser state); checked by whether the input buffers are deleted after a
   call, and timed against the same update compiled without donation.
2. Host↔device copies: the update with the rollout already on the device,
   with the rollout as numpy arrays (what `observe` passes), and the whole
   `observe` call that triggers the update (buffer writes, state placement,
   metrics to host). The device-resident update also runs under
   `jax.transfer_guard("disallow")`, which raises on any implicit transfer.
3. Recompilation: real CartPole training loops of every algorithm for a
   number of learner updates after warm-up, counting the agent's own trace
   counters (`agent.trace_counts`) and XLA backend compilations reported by
   `jax.monitoring`.
4. Diagnostics: soft-q's update also differentiates the matching A2C loss to
   report `grad_cosine` every update. It is timed against a2c's update and
   against a benchmark-only soft-q update that computes only the soft-q
   gradient (checked to give the same parameters).

Every timing compares thunks interleaved in one process.
"""

from __future__ import annotations

import numpy as np

from benchmarks.harness import markdown_table, median, ratio_samples, spread, time_interleaved
from benchmarks.learner_scaling import NUM_STEPS, make_learner, stateful_update

_COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
_compile_events = {"count": 0}
_listener_installed = False


def _install_compile_listener() -> None:
    global _listener_installed
    if _listener_installed:
        return
    import jax

    def listener(event: str, duration: float, **kwargs) -> None:
        if event == _COMPILE_EVENT:
            _compile_events["count"] += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    _listener_installed = True


def _undonated_update(agent):
    from softeq.adapters import parallel
    from softeq.adapters.agents.actor_critic import make_learner_update

    update = make_learner_update(
        agent.network.apply, agent.optimizer, algo=agent.algo, config=agent.config
    )
    return parallel.data_parallel_update(update, agent.mesh, batch_axis=0, donate_state=False)


def soft_q_only_update(agent):
    """Benchmark-only soft-q learner update: the soft-q gradient alone, no A2C diagnostics."""
    import jax
    import optax

    from softeq.adapters import parallel
    from softeq.adapters.agents.actor_critic import LearnerState, forward, soft_q_batch_loss

    apply, optimizer, config = agent.network.apply, agent.optimizer, agent.config

    def update(learner, rollout):
        def loss(params):
            logits, values = forward(apply, params, rollout.obs)
            value, _ = soft_q_batch_loss(logits, values, rollout, config=config)
            return value

        value, grads = jax.value_and_grad(loss)(learner.params)
        updates, opt_state = optimizer.update(grads, learner.opt_state, learner.params)
        params = optax.apply_updates(learner.params, updates)
        metrics = {"loss": value, "grad_norm": optax.tree.norm(grads)}
        return LearnerState(params, opt_state), metrics

    return parallel.data_parallel_update(update, agent.mesh, batch_axis=0)


def _copy(tree):
    import jax
    import jax.numpy as jnp

    return jax.tree.map(jnp.copy, tree)


def check_donation(torso: str, num_envs: int, *, repeats: int, inner: int) -> tuple:
    import jax

    agent, learner, batch = make_learner("a2c", torso, num_envs)
    spare = _copy(learner)
    leaves = jax.tree.leaves(learner)
    new, metrics = agent.learner_update(learner, batch)
    jax.block_until_ready(metrics)
    deleted = sum(leaf.is_deleted() for leaf in leaves)
    plain = _undonated_update(agent)
    samples = time_interleaved(
        {
            "donated": stateful_update(agent, new, batch),
            "not donated": _plain_thunk(plain, spare, batch),
        },
        repeats=repeats,
        inner=inner,
    )
    ratios = ratio_samples(samples["not donated"], samples["donated"])
    return (
        torso,
        f"{deleted}/{len(leaves)} input buffers freed by the call",
        _ms(samples["donated"]),
        _ms(samples["not donated"]),
        f"{median(ratios):.2f}",
    )


def _plain_thunk(update, learner, batch):
    cell = [learner]

    def step():
        cell[0], metrics = update(cell[0], batch)
        return metrics

    return step


def _ms(samples) -> str:
    return f"{median(samples) * 1e3:.2f} ({spread(samples, scale=1e3, digits=2)})"


def check_copies(torso: str, num_envs: int, *, repeats: int, inner: int) -> list:
    """Rows: device-resident update, numpy-input update, full observe; plus the guard result."""
    import jax

    from softeq.adapters.envs import StepResult

    agent, learner, batch = make_learner("a2c", torso, num_envs)
    host_batch = jax.device_get(batch)
    nbytes = sum(np.asarray(x).nbytes for x in jax.tree.leaves(host_batch))
    # The same computation three ways, each with its own state chain.
    device_thunk = stateful_update(agent, learner, batch)
    numpy_thunk = stateful_update(agent, _copy(learner), host_batch)

    obs0 = host_batch.obs[:, 0]
    state = agent.init(0, obs0)._replace(learner=_copy(learner))
    state.rollout.obs[:] = host_batch.obs
    state.rollout.actions[:] = host_batch.actions
    state.rollout.rewards[:] = host_batch.rewards
    state.rollout.discounts[:] = host_batch.discounts
    step_result = StepResult(
        obs=host_batch.obs[:, -1],
        reward=host_batch.rewards[:, -1],
        terminated=np.zeros(num_envs, bool),
        truncated=np.zeros(num_envs, bool),
        final_obs=host_batch.obs[:, -1],
        episode_returns=np.full(num_envs, np.nan),
        episode_lengths=np.full(num_envs, np.nan),
    )
    last = np.asarray(NUM_STEPS - 1, np.int64)
    cell = [state]

    def observe_thunk():
        # Every call stores the last transition of a full rollout, so every call learns.
        s, metrics = agent.observe(
            cell[0]._replace(cursor=last),
            host_batch.obs[:, -2],
            host_batch.actions[:, -1],
            step_result,
        )
        cell[0] = s
        return metrics

    from softeq.adapters import parallel
    from softeq.adapters.agents import common

    placed = _copy(learner)
    metrics = jax.block_until_ready(device_thunk())
    samples = time_interleaved(
        {
            "device": device_thunk,
            "numpy": numpy_thunk,
            "observe": observe_thunk,
            "put": lambda: jax.device_put(placed, parallel.replicated(agent.mesh)),
            "floats": lambda: common.to_floats(metrics),
        },
        repeats=repeats,
        inner=inner,
    )
    try:
        with jax.transfer_guard("disallow"):
            jax.block_until_ready(device_thunk())
        guard = "no implicit transfer"
    except Exception as exc:  # the guard raises on the first implicit transfer
        guard = f"implicit transfer: {type(exc).__name__}"
    rows = []
    for name, label in (
        ("device", f"update, rollout on device ({guard} under transfer_guard)"),
        ("numpy", f"update, rollout from numpy ({nbytes / 1e3:,.1f} kB host→device per update)"),
        ("observe", "agent.observe that triggers the update (writes, placement, metrics to host)"),
        ("put", "part of observe: jax.device_put of the already-replicated learner state"),
        ("floats", f"part of observe: the {len(metrics)} metrics to Python floats"),
    ):
        ratios = ratio_samples(samples[name], samples["device"])
        rows.append((torso, num_envs, label, _ms(samples[name]), f"{median(ratios):.2f}"))
    return rows


def check_recompilation(algo: str, *, updates: int) -> tuple:
    """Trace and compile counts over `updates` learner updates of a CartPole loop, after warm-up."""
    import jax

    from softeq.adapters import agents
    from softeq.adapters.envs import make_vector_env

    _install_compile_listener()
    env_id = "CartPole-v1"
    config = agents.default_config(algo, env_id)
    num_envs = agents.default_num_envs(algo, env_id)
    env = make_vector_env(env_id, num_envs=num_envs, seed=0)
    try:
        agent = agents.make_agent_for_env(algo, config, env)
        obs = env.reset(seed=0)
        state = agent.init(0, obs)

        def loop(target: int) -> None:
            nonlocal state, obs
            while int(state.updates) < target:
                actions, state = agent.act(state, obs)
                step = env.step(np.asarray(actions))
                state, _ = agent.observe(state, obs, actions, step)
                obs = step.obs

        warm_compiles = _compile_events["count"]
        loop(1)  # warm-up: act and the learner compiled once
        jax.block_until_ready(state.learner)
        warm_compiles = _compile_events["count"] - warm_compiles
        traces_before = dict(agent.trace_counts)
        compiles_before = _compile_events["count"]
        start = int(state.updates)
        loop(start + updates)
        jax.block_until_ready(state.learner)
        traces_after = dict(agent.trace_counts)
        compiles = _compile_events["count"] - compiles_before
        done = int(state.updates) - start
    finally:
        env.close()
    retraces = {k: traces_after[k] - traces_before.get(k, 0) for k in traces_after}
    return (
        algo,
        env_id,
        done,
        ", ".join(f"{k} {traces_after[k]}" for k in sorted(traces_after)),
        warm_compiles,
        sum(retraces.values()),
        compiles,
    )


def check_diagnostics(torso: str, num_envs: int, *, repeats: int, inner: int) -> list:
    import jax

    a2c_agent, a2c_learner, batch = make_learner("a2c", torso, num_envs)
    agent, learner, _ = make_learner("soft-q", torso, num_envs)
    lean = soft_q_only_update(agent)

    # The lean update must move the parameters exactly as the agent's soft-q update does.
    ref, _ = agent.learner_update(_copy(learner), batch)
    got, _ = lean(_copy(learner), batch)
    for a, b in zip(jax.tree.leaves(ref.params), jax.tree.leaves(got.params), strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-4, atol=1e-6)

    samples = time_interleaved(
        {
            "a2c": stateful_update(a2c_agent, a2c_learner, batch),
            "soft-q": stateful_update(agent, learner, batch),
            "lean": _plain_thunk(lean, _copy(learner), batch),
        },
        repeats=repeats,
        inner=inner,
    )
    rows = []
    for name, label in (
        ("a2c", "a2c update"),
        ("soft-q", "soft-q update (agent: + A2C gradient for grad_cosine)"),
        ("lean", "soft-q gradient only (benchmark-only)"),
    ):
        ratios = ratio_samples(samples[name], samples["a2c"])
        rows.append(
            (torso, num_envs * NUM_STEPS, label, _ms(samples[name]), f"{median(ratios):.2f}")
        )
    return rows


def run(
    *,
    torsos=(("nature", 8), ("mlp", 16)),
    algos=("a2c", "soft-q", "dqn"),
    recompile_updates: int = 200,
    repeats: dict | None = None,
    quick: bool = False,
) -> tuple[str, list]:
    """Returns the markdown section and the raw rows of the four tables."""
    if quick:
        torsos, algos, recompile_updates = (("mlp", 16),), ("a2c",), 10
        repeats = {"mlp": 5, "nature": 2}
    repeats = {"nature": 7, "mlp": 20, **(repeats or {})}
    inner = {"nature": 1, "mlp": 5}

    donation = [check_donation(t, n, repeats=repeats[t], inner=inner[t]) for t, n in torsos]
    copies = [
        row for t, n in torsos for row in check_copies(t, n, repeats=repeats[t], inner=inner[t])
    ]
    recompiles = [check_recompilation(a, updates=recompile_updates) for a in algos]
    diagnostics = [
        row
        for t, n in torsos
        for row in check_diagnostics(t, n, repeats=repeats[t], inner=inner[t])
    ]
    text = (
        "## Learner efficiency\n\n"
        f"a2c/soft-q learner updates on synthetic rollouts (T = {NUM_STEPS}); CNN = Nature torso "
        "on uint8 [4, 84, 84], MLP = CartPole-shaped vectors. Ratios are medians of per-round "
        "ratios against the first row of each group, timed interleaved.\n\n"
        "### Donation of parameters and optimiser state\n\n"
        + markdown_table(
            ["torso", "donation", "donated ms (IQR)", "not donated ms (IQR)", "not / donated"],
            donation,
        )
        + "\n\n### Host↔device copies in the hot loop\n\n"
        + markdown_table(["torso", "envs N", "what is timed", "ms (IQR)", "/ on-device"], copies)
        + "\n\n### Recompilation\n\n"
        f"Real CartPole training loops (default settings), {recompile_updates} learner "
        "updates after the first; traces counted by the agents' `trace_counts` (a wrapper "
        "counting every trace of the jitted functions) and XLA compilations by a "
        f"`jax.monitoring` listener on `{_COMPILE_EVENT}`.\n\n"
        + markdown_table(
            [
                "algo",
                "env",
                "updates",
                "traces in total",
                "compilations in warm-up (listener check)",
                "retraces after warm-up",
                "compilations after warm-up",
            ],
            recompiles,
        )
        + "\n\n### Cost of soft-q's per-update diagnostics\n\n"
        + markdown_table(["torso", "batch", "update", "ms (IQR)", "/ a2c"], diagnostics)
        + "\n"
    )
    return text, donation + copies + recompiles + diagnostics
