"""A minimal hand-written jitted A2C: the speed limit the jitted driver is measured against.

Everything a PureJaxRL-style program does, and nothing else: gymnax's
CartPole-v1, a 64-64 tanh MLP with a policy and a value head (orthogonal
init, as `softeq.adapters.networks.make_actor_critic(torso="mlp")`), 32 envs ×
8-step rollouts, n-step returns bootstrapped from the end of each rollout with
the entropy bonus folded into the returns ("proper", τ = 0.01), value weight
0.5, Adam 5e-3 with global-norm clipping at 0.5 and a learning rate decaying
linearly to 0, γ = 0.98. Rollout and update of a whole run sit in one
`lax.scan`; seeds are `vmap`ped. No logging, checkpoints, evaluation or
truncation handling: the cost of those is what the comparison measures.

It uses only jax, optax and gymnax (no softeq code), so it is an independent
limit, not a copy of the driver.

    python -m benchmarks.reference_a2c --seeds 3 --total-steps 450000
"""

from __future__ import annotations

import argparse
import itertools
import time

import gymnax
import jax
import jax.numpy as jnp
import optax

NUM_ENVS, NUM_STEPS = 32, 8
LEARNING_RATE, MAX_GRAD_NORM = 5e-3, 0.5
DISCOUNT, TEMPERATURE, VALUE_WEIGHT = 0.98, 0.01, 0.5
HIDDEN = (64, 64)


def init_params(key: jax.Array, obs_size: int, num_actions: int) -> dict:
    """Orthogonal weights (gain √2 hidden, 0.01 logits, 1 value), zero biases."""
    sizes = (obs_size, *HIDDEN)
    keys = jax.random.split(key, len(HIDDEN) + 2)
    params = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        w = jax.nn.initializers.orthogonal(jnp.sqrt(2.0))(keys[i], (fan_in, fan_out))
        params[f"h{i}"] = (w, jnp.zeros(fan_out))
    for name, size, gain, k in (("pi", num_actions, 0.01, keys[-2]), ("v", 1, 1.0, keys[-1])):
        params[name] = (
            jax.nn.initializers.orthogonal(gain)(k, (HIDDEN[-1], size)),
            jnp.zeros(size),
        )
    return params


def forward(params: dict, obs: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Logits `[B, A]` and values `[B]`."""
    h = obs
    for i in range(len(HIDDEN)):
        w, b = params[f"h{i}"]
        h = jnp.tanh(h @ w + b)
    logits = h @ params["pi"][0] + params["pi"][1]
    return logits, (h @ params["v"][0] + params["v"][1])[:, 0]


def make_train(total_steps: int):
    """`train(key) -> (params, mean return of episodes ended in the last update)`."""
    env, env_params = gymnax.make("CartPole-v1")
    num_updates = total_steps // (NUM_ENVS * NUM_STEPS)
    schedule = optax.linear_schedule(LEARNING_RATE, 0.0, num_updates)
    optimizer = optax.chain(optax.clip_by_global_norm(MAX_GRAD_NORM), optax.adam(schedule))
    step_env = jax.vmap(env.step, in_axes=(0, 0, 0, None))
    obs_size = env.observation_space(env_params).shape[0]

    def loss_fn(params, obs, actions, rewards, discounts):
        # obs [T + 1, N, D]; actions, rewards, discounts [T, N]
        logits, values = jax.vmap(lambda o: forward(params, o))(obs)
        log_pi = jax.nn.log_softmax(logits)
        neg_entropy = jnp.sum(jnp.exp(log_pi) * log_pi, -1)  # [T + 1, N]
        # proper entropy: future entropy bonuses are part of the return
        bonus = -TEMPERATURE * neg_entropy[1:]
        returns = jax.lax.stop_gradient(values[-1])
        targets = []
        for t in reversed(range(NUM_STEPS)):
            returns = rewards[t] + discounts[t] * (returns + (bonus[t] if t < NUM_STEPS - 1 else 0))
            targets.append(returns)
        targets = jax.lax.stop_gradient(jnp.stack(targets[::-1]))
        advantages = jax.lax.stop_gradient(targets - values[:-1])
        taken = jnp.take_along_axis(log_pi[:-1], actions[..., None], -1)[..., 0]
        policy_loss = -jnp.mean(taken * advantages)
        value_loss = 0.5 * jnp.mean((targets - values[:-1]) ** 2)
        return policy_loss + TEMPERATURE * jnp.mean(neg_entropy[:-1]) + VALUE_WEIGHT * value_loss

    def update(carry, _):
        params, opt_state, env_state, obs, episode_return, key = carry

        def act(c, _):
            env_state, obs, episode_return, key = c
            key, k_act, k_env = jax.random.split(key, 3)
            logits, _ = forward(params, obs)
            action = jax.random.categorical(k_act, logits)
            next_obs, env_state, reward, terminated, truncated, _ = step_env(
                jax.random.split(k_env, NUM_ENVS), env_state, action, env_params
            )
            done = jnp.logical_or(terminated, truncated)
            episode_return = episode_return + reward
            ended = jnp.where(done, episode_return, jnp.nan)
            episode_return = jnp.where(done, 0.0, episode_return)
            record = (obs, action, reward, DISCOUNT * (1 - done), ended)
            return (env_state, next_obs, episode_return, key), record

        (env_state, last_obs, episode_return, key), record = jax.lax.scan(
            act, (env_state, obs, episode_return, key), None, NUM_STEPS
        )
        obs_t, actions, rewards, discounts, ended = record
        all_obs = jnp.concatenate([obs_t, last_obs[None]])
        grads = jax.grad(loss_fn)(params, all_obs, actions, rewards, discounts)
        updates, opt_state = optimizer.update(grads, opt_state, params)
        params = optax.apply_updates(params, updates)
        return (params, opt_state, env_state, last_obs, episode_return, key), ended

    def train(key: jax.Array):
        key, k_init, k_reset = jax.random.split(key, 3)
        params = init_params(k_init, obs_size, env.num_actions)
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(
            jax.random.split(k_reset, NUM_ENVS), env_params
        )
        carry = (params, optimizer.init(params), env_state, obs, jnp.zeros(NUM_ENVS), key)
        carry, ended = jax.lax.scan(update, carry, None, num_updates)
        return carry[0], ended[-20:]  # [20, T, N] returns of episodes ended near the end

    return train


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--total-steps", type=int, default=450_000)
    args = parser.parse_args(argv)
    train = jax.jit(jax.vmap(make_train(args.total_steps)))
    keys = jax.random.split(jax.random.PRNGKey(0), args.seeds)
    start = time.perf_counter()
    compiled = train.lower(keys).compile()
    compile_s = time.perf_counter() - start
    start = time.perf_counter()
    _, ended = jax.block_until_ready(compiled(keys))
    run_s = time.perf_counter() - start
    steps = args.seeds * (args.total_steps // (NUM_ENVS * NUM_STEPS)) * NUM_ENVS * NUM_STEPS
    print(f"compile {compile_s:.1f} s, run {run_s:.1f} s, {steps / run_s:,.0f} env-steps/s")
    print("mean return of episodes ended in the last 20 updates, per seed:")
    print(jnp.nanmean(ended.reshape(args.seeds, -1), axis=1))


if __name__ == "__main__":
    main()
