"""softeq's core kernels against rlax on the same inputs: jitted loss + gradient.

Three pairs, each vmapped over a batch of B trajectories of length T:

- n-step targets: `softeq.core.soft_n_step_targets` at temperature 0 against
  `rlax.n_step_bootstrapped_returns` (the same computation);
- policy loss: `softeq.core.regularised_policy_gradient_loss` with π̄ ≡ 1
  against `rlax.policy_gradient_loss + τ·rlax.entropy_loss` (the same
  computation);
- one-step Q loss: `softeq.core.soft_q_learning` (log-sum-exp bootstrap)
  against `rlax.q_learning` (max bootstrap) on the same shapes — not the same
  computation, listed to show what the soft value costs.

Two benchmark-only variants of the n-step targets (not in `softeq.core`) are
listed next to them, to tell the cost of `vmap` from the cost of the
summation itself:

- "per-trajectory sum, vmapped": the λ = 1 backward sum
  y ← r + γ·y written for one `[T]` trajectory and vmapped like the others;
- "batch-native [T, B]": the same sum on time-major `[T, B]` arrays in one
  pass (the `[B, T]` inputs are transposed inside the timed function).

Both are checked against rlax (values and gradients) before they are timed.
`rlax.n_step_bootstrapped_returns` handles a general λ, computing
r + γ((1 − λ)v + λy) with λ = 1, so its gradient also flows through the
0·v terms; the variants show what that costs.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import rlax

from benchmarks.harness import markdown_table, median, spread, time_interleaved
from softeq.core import regularised_policy_gradient_loss, soft_n_step_targets, soft_q_learning

NUM_ACTIONS = 6
N_STEP = 5
TEMPERATURE = 0.01


def _inputs(batch: int, steps: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    f32 = np.float32
    return {
        "r": jnp.asarray(rng.normal(size=(batch, steps)).astype(f32)),
        "d": jnp.asarray((0.99 * (rng.random((batch, steps)) > 0.05)).astype(f32)),
        "v": jnp.asarray(rng.normal(size=(batch, steps)).astype(f32)),
        "kl": jnp.asarray(rng.random((batch, steps)).astype(f32)),
        "logits": jnp.asarray(rng.normal(size=(batch, steps, NUM_ACTIONS)).astype(f32)),
        "q_next": jnp.asarray(rng.normal(size=(batch, steps, NUM_ACTIONS)).astype(f32)),
        "a": jnp.asarray(rng.integers(0, NUM_ACTIONS, size=(batch, steps)).astype(np.int32)),
        "adv": jnp.asarray(rng.normal(size=(batch, steps)).astype(f32)),
    }


def n_step_sum_one(r_t, discount_t, v_t, n: int):
    """λ = 1 n-step bootstrapped returns of one trajectory, `[T]` → `[T]` (rlax alignment)."""
    steps = r_t.shape[0]
    pad = n - 1
    boot = jnp.concatenate([v_t, jnp.broadcast_to(v_t[-1:], (pad,))])
    r = jnp.concatenate([r_t, jnp.zeros((pad,), r_t.dtype)])
    d = jnp.concatenate([discount_t, jnp.ones((pad,), r_t.dtype)])
    y = boot[n - 1 : n - 1 + steps]
    for i in reversed(range(n)):
        y = r[i : i + steps] + d[i : i + steps] * y
    return y


def n_step_sum_time_major(r_t, discount_t, v_t, n: int):
    """λ = 1 n-step bootstrapped returns of a batch, time-major `[T, B]` → `[T, B]`."""
    steps, batch = r_t.shape
    pad = n - 1
    boot = jnp.concatenate([v_t, jnp.broadcast_to(v_t[-1:], (pad, batch))])
    r = jnp.concatenate([r_t, jnp.zeros((pad, batch), r_t.dtype)])
    d = jnp.concatenate([discount_t, jnp.ones((pad, batch), r_t.dtype)])
    y = boot[n - 1 : n - 1 + steps]
    for i in reversed(range(n)):
        y = r[i : i + steps] + d[i : i + steps] * y
    return y


def _variant_pairs():
    """(name, variant, rlax reference, argument key, same computation) of the n-step variants."""

    def rlax_targets(v, x):
        y = jax.vmap(lambda r, d, v: rlax.n_step_bootstrapped_returns(r, d, v, N_STEP))(
            x["r"], x["d"], v
        )
        return jnp.mean(y)

    def vmapped_sum(v, x):
        y = jax.vmap(lambda r, d, v: n_step_sum_one(r, d, v, N_STEP))(x["r"], x["d"], v)
        return jnp.mean(y)

    def time_major_sum(v, x):
        return jnp.mean(n_step_sum_time_major(x["r"].T, x["d"].T, v.T, N_STEP))

    grad = lambda f: jax.jit(jax.value_and_grad(f))  # noqa: E731
    return [
        ("n-step targets: per-trajectory sum, vmapped", grad(vmapped_sum), grad(rlax_targets)),
        ("n-step targets: batch-native [T, B]", grad(time_major_sum), grad(rlax_targets)),
    ]


def _check_same(ours, theirs, arg, x) -> None:
    """The variant and rlax agree on the value and the gradient (float32 round-off)."""
    (value_a, grad_a), (value_b, grad_b) = ours(arg, x), theirs(arg, x)
    np.testing.assert_allclose(float(value_a), float(value_b), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(np.asarray(grad_a), np.asarray(grad_b), rtol=1e-5, atol=1e-9)


def _pairs():
    zeros_prior = jnp.zeros(NUM_ACTIONS, jnp.float32)

    def softeq_targets(v, x):
        y = jax.vmap(
            lambda r, d, v, kl: soft_n_step_targets(r, d, v, kl, temperature=0.0, n=N_STEP)
        )(x["r"], x["d"], v, x["kl"])
        return jnp.mean(y)

    def rlax_targets(v, x):
        y = jax.vmap(lambda r, d, v: rlax.n_step_bootstrapped_returns(r, d, v, N_STEP))(
            x["r"], x["d"], v
        )
        return jnp.mean(y)

    def softeq_policy(logits, x):
        return jnp.mean(
            jax.vmap(
                lambda lg, a, adv: regularised_policy_gradient_loss(
                    lg, a, adv, temperature=TEMPERATURE, log_prior=zeros_prior
                )
            )(logits, x["a"], x["adv"])
        )

    def rlax_policy(logits, x):
        def one(lg, a, adv):
            w = jnp.ones(a.shape, lg.dtype)
            return rlax.policy_gradient_loss(lg, a, adv, w) + TEMPERATURE * rlax.entropy_loss(lg, w)

        return jnp.mean(jax.vmap(one)(logits, x["a"], x["adv"]))

    def per_transition(td_fn):
        def loss(q, x):
            td = jax.vmap(jax.vmap(td_fn))(q, x["a"], x["r"], x["d"], x["q_next"])
            return jnp.mean(0.5 * jnp.square(td))

        return loss

    softeq_q = per_transition(
        lambda q, a, r, d, qn: soft_q_learning(
            q, a, r, d, qn, temperature=TEMPERATURE, log_prior=zeros_prior
        )
    )
    rlax_q = per_transition(rlax.q_learning)
    grad = lambda f: jax.jit(jax.value_and_grad(f))  # noqa: E731
    return [
        ("n-step targets (τ = 0)", grad(softeq_targets), grad(rlax_targets), "v", True),
        ("policy loss + entropy", grad(softeq_policy), grad(rlax_policy), "logits", True),
        ("1-step Q loss (soft vs max)", grad(softeq_q), grad(rlax_q), "logits", False),
    ]


def run(
    *, batches=(32, 256, 4096), lengths=(5, 128), repeats: int = 30, variants: bool = True
) -> tuple[str, list]:
    """Returns the markdown section and the raw rows.

    `variants` adds the two benchmark-only n-step formulations (see the module
    docstring) after the three softeq/rlax pairs of every (B, T).
    """
    rows = []
    for batch in batches:
        for steps in lengths:
            x = _inputs(batch, steps)
            pairs = _pairs()
            if variants:
                for name, ours, theirs in _variant_pairs():
                    _check_same(ours, theirs, x["v"], x)
                    pairs.append((name, ours, theirs, "v", True))
            for name, ours, theirs, key, same in pairs:
                arg = x[key]
                samples = time_interleaved(
                    {
                        "softeq": lambda f=ours, a=arg, x=x: f(a, x),
                        "rlax": lambda f=theirs, a=arg, x=x: f(a, x),
                    },
                    repeats=repeats,
                )
                ours_s, theirs_s = median(samples["softeq"]), median(samples["rlax"])
                rows.append(
                    (
                        name,
                        batch,
                        steps,
                        f"{ours_s * 1e6:.0f} ({spread(samples['softeq'])})",
                        f"{theirs_s * 1e6:.0f} ({spread(samples['rlax'])})",
                        f"{ours_s / theirs_s:.2f}",
                        "yes" if same else "no",
                    )
                )
    header = [
        "kernel",
        "B",
        "T",
        "softeq µs (IQR)",
        "rlax µs (IQR)",
        "softeq / rlax",
        "same computation",
    ]
    text = (
        "## Core kernels against rlax (jitted loss + gradient, float32)\n\n"
        f"Median µs per call over {repeats} interleaved samples of 5 calls; A = {NUM_ACTIONS}, "
        f"n = {N_STEP}, τ = {TEMPERATURE}. Rows named 'n-step targets: …' are benchmark-only "
        "formulations of the same targets (not softeq code), in the softeq column, against "
        "rlax.\n\n" + markdown_table(header, rows) + "\n"
    )
    return text, rows
