"""Haiku networks for the agents: Nature-CNN, MinAtar and MLP torsos, actor-critic and Q heads.

Every constructor returns an `hk.Transformed` made with
`hk.without_apply_rng`, so `init(rng, obs)` needs a key and `apply(params, obs)`
does not (the networks are deterministic). Observations are batched:

* Atari frames `[B, stack, H, W]` uint8 (or `[B, stack, H, W, 3]` for RGB),
  the layout of `softeq.adapters.envs` — the torso moves the stack to the
  channel axis and divides by 255 itself;
* MinAtar images `[B, 10, 10, C]` (channel-last 0/1 planes, uint8 or float);
* vector observations `[B, D]` float.

Weights use orthogonal initialisation with zero biases: gain √2 for hidden
layers followed by ReLU/tanh, 0.01 for the policy logits (a near-uniform
initial policy) and 1 for value and Q heads, as in the usual A2C/PPO set-ups.

The dueling soft-Q head of [E16] is `soft_q_from_actor_critic`: an
actor-critic's `(logits, values)` define Q = V + τ log π, whose soft value (with
π̄ ≡ 1, the entropy-bonus convention) is V and whose Boltzmann policy is π.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np

from softeq.core import boltzmann_log_policy

TORSOS: tuple[str, ...] = ("nature", "minatar", "mlp")

#: Height and width of a MinAtar observation.
MINATAR_GRID = (10, 10)
_HIDDEN_GAIN = math.sqrt(2.0)
_POLICY_GAIN = 0.01
_VALUE_GAIN = 1.0


def _orthogonal(gain: float) -> hk.initializers.Initializer:
    return hk.initializers.Orthogonal(scale=gain)


def _dense(size: int, gain: float, name: str) -> hk.Linear:
    return hk.Linear(size, w_init=_orthogonal(gain), b_init=jnp.zeros, name=name)


@jax.custom_jvp
def weight_gradient_as_transpose(w: jax.Array) -> jax.Array:
    """`w` `[K, N]` itself; its derivative passes through a transpose, so that XLA:CPU
    computes the gradient of a product `x @ w` as the `[N, K]` product `gᵀ x`.

    Autodiff gives the weight gradient of `x [B, K] @ w [K, N]` as `xᵀ g` `[K, N]`;
    XLA:CPU runs that form about twice as slow as `gᵀ x` `[N, K]` when B and K are
    large (it transposes the big operand), and it picks the slow form whenever the
    product carries a batch axis, as it does once seeds are `vmap`ped with their own
    parameters. Here the tangent (and so, transposed, the cotangent) of `w` goes
    through `transpose → optimisation barrier → transpose`: XLA folds the inner
    transpose into the product, which then has the fast form, and the barrier keeps
    it from folding the outer one back. The forward value is `w` untouched (no copy);
    gradients are the same sums laid out differently; forward-mode autodiff works.

    Measured on a 2-core AMD EPYC, `[576, 1024] @ [1024, 128]`, forward + weight
    gradient: 3.5 → 3.4 ms for one seed, 15.1 → 10.8 ms for 3 vmapped seeds
    (benchmarks/RESULTS-seed-batching.md).
    """
    return w


@weight_gradient_as_transpose.defjvp
def _weight_gradient_as_transpose_jvp(primals, tangents):
    (w,), (tangent,) = primals, tangents
    return w, jax.lax.optimization_barrier(tangent.T).T


class _TorsoLinear(hk.Linear):
    """`hk.Linear` (same parameters `w [D, N]`, `b [N]`, names and initialisation) whose
    weight gradient takes the fast form of `weight_gradient_as_transpose`: for the large
    dense layer of a torso, where that gradient is a large share of an update."""

    def __call__(self, inputs: jax.Array, *, precision=None) -> jax.Array:
        w = hk.get_parameter(
            "w", [inputs.shape[-1], self.output_size], inputs.dtype, init=self.w_init
        )
        out = jnp.dot(inputs, weight_gradient_as_transpose(w), precision=precision)
        b = hk.get_parameter("b", [self.output_size], inputs.dtype, init=self.b_init)
        return out + b


def _torso_dense(size: int, gain: float, name: str) -> hk.Linear:
    return _TorsoLinear(size, w_init=_orthogonal(gain), b_init=jnp.zeros, name=name)


def _check_num_actions(num_actions) -> int:
    if (
        not isinstance(num_actions, int | np.integer)
        or isinstance(num_actions, bool)
        or num_actions < 1
    ):
        raise ValueError(f"`num_actions` must be an int >= 1, got {num_actions!r}.")
    return int(num_actions)


def _check_torso(torso) -> str:
    if torso not in TORSOS:
        raise ValueError(f"`torso` must be one of {TORSOS}, got {torso!r}.")
    return torso


def _check_hidden(hidden) -> tuple[int, ...]:
    hidden = tuple(hidden)
    if not hidden or any(
        not isinstance(h, int | np.integer) or isinstance(h, bool) or h < 1 for h in hidden
    ):
        raise ValueError(f"`hidden` must be a non-empty sequence of ints >= 1, got {hidden!r}.")
    return tuple(int(h) for h in hidden)


def torso_for_observation(observation_shape: Sequence[int]) -> str:
    """The torso that fits one observation's shape: `"minatar"` for MinAtar's
    `(10, 10, C)` images, `"nature"` for frame stacks (`(stack, H, W)` or
    `(stack, H, W, 3)`), `"mlp"` for vectors `(D,)`.

    Example:
      >>> torso_for_observation((4, 84, 84)), torso_for_observation((4,))
      ('nature', 'mlp')
      >>> torso_for_observation((10, 10, 4))
      'minatar'
    """
    shape = tuple(observation_shape)
    if len(shape) == 1:
        return "mlp"
    if len(shape) == 3 and shape[:2] == MINATAR_GRID:
        return "minatar"
    if _is_frame_stack(shape):
        return "nature"
    raise ValueError(
        f"`observation_shape` must be (D,), (stack, H, W) or (stack, H, W, 3), got {shape}."
    )


def _is_frame_stack(observation_shape: Sequence[int]) -> bool:
    """Atari's layout of pixel frames: `(stack, H, W)` or `(stack, H, W, 3)`, not MinAtar's grid."""
    shape = tuple(observation_shape)
    if len(shape) == 3:
        return shape[:2] != MINATAR_GRID
    return len(shape) == 4 and shape[-1] == 3


def nature_cnn_torso(x: jax.Array, *, feature_size: int = 512) -> jax.Array:
    """Nature-DQN convolutional torso with its shared dense layer (call inside `hk.transform`).

    Conv 32 filters 8×8 stride 4 → conv 64 4×4 stride 2 → conv 64 3×3 stride 1
    (VALID padding, ReLU after each) → flatten → dense `feature_size` + ReLU.

    Args:
      x: `[B, stack, H, W]` frames (uint8, or any numeric dtype holding 0–255
        pixel values), or `[B, stack, H, W, 3]` RGB frames. Divided by 255.
      feature_size: width of the dense layer (512 in the Nature network).

    Returns:
      `[B, feature_size]` float32 features.
    """
    if x.ndim == 5 and x.shape[-1] == 3:
        b, s, h, w, c = x.shape
        x = jnp.transpose(x, (0, 2, 3, 1, 4)).reshape(b, h, w, s * c)
    elif x.ndim == 4:
        x = jnp.transpose(x, (0, 2, 3, 1))
    else:
        raise ValueError(
            f"`x` must be [B, stack, H, W] or [B, stack, H, W, 3] frames, got shape {x.shape} "
            "(merge any extra leading axes, such as time, into B first)."
        )
    x = x.astype(jnp.float32) / 255.0
    for i, (channels, kernel, stride) in enumerate(((32, 8, 4), (64, 4, 2), (64, 3, 1))):
        x = hk.Conv2D(
            channels,
            kernel_shape=kernel,
            stride=stride,
            padding="VALID",
            w_init=_orthogonal(_HIDDEN_GAIN),
            b_init=jnp.zeros,
            name=f"conv{i}",
        )(x)
        x = jax.nn.relu(x)
    x = hk.Flatten()(x)
    return jax.nn.relu(_dense(feature_size, _HIDDEN_GAIN, "shared_dense")(x))


def minatar_torso(x: jax.Array, *, channels: int = 16, feature_size: int = 128) -> jax.Array:
    """The MinAtar network's torso (Young & Tian 2019; call inside `hk.transform`).

    Conv `channels` filters 3×3 stride 1 (VALID) + ReLU → flatten → dense
    `feature_size` + ReLU, with the parameters of `hk.Conv2D` and `hk.Linear`
    (`conv/w [3, 3, C, channels]`, `conv/b`, `shared_dense/w [64·channels,
    feature_size]`, `shared_dense/b`) and the same values.

    The convolution is computed as one matrix product on the nine shifted windows
    of the image laid side by side (im2col). Same result as
    `lax.conv_general_dilated`, but on XLA:CPU a convolution whose kernel is
    `vmap`ped over seeds becomes a grouped convolution, where a batched product
    stays a product. The windows are joined in the observation's own dtype
    (uint8: a quarter of the bytes of float32) and converted once. Both products
    (convolution and dense layer) take their weight gradients through
    `weight_gradient_as_transpose`, the form XLA:CPU runs fast with seeds vmapped.

    Args:
      x: `[B, 10, 10, C]` channel-last observations (uint8 or float 0/1 planes).
      channels: filters of the convolution.
      feature_size: width of the dense layer.

    Returns:
      `[B, feature_size]` float32 features.
    """
    if x.ndim != 4 or tuple(x.shape[1:3]) != MINATAR_GRID:
        raise ValueError(
            f"`x` must be [B, 10, 10, C] MinAtar observations, got shape {x.shape} "
            "(merge any extra leading axes, such as time, into B first)."
        )
    in_channels = x.shape[-1]
    size = MINATAR_GRID[0] - 2  # VALID 3×3 windows per axis
    with hk.name_scope("conv"):
        w = hk.get_parameter(
            "w", (3, 3, in_channels, channels), jnp.float32, init=_orthogonal(_HIDDEN_GAIN)
        )
        b = hk.get_parameter("b", (channels,), jnp.float32, init=jnp.zeros)
    # patches[..., (3i + j)·C + c] = x[:, h + i, w + j, c], matching w.reshape(9C, channels).
    windows = [x[:, i : i + size, j : j + size, :] for i in range(3) for j in range(3)]
    patches = jnp.concatenate(windows, axis=-1).astype(jnp.float32)
    kernel = weight_gradient_as_transpose(w.reshape(9 * in_channels, channels))
    h = jax.nn.relu(patches @ kernel + b)
    h = h.reshape(h.shape[0], size * size * channels)
    return jax.nn.relu(_torso_dense(feature_size, _HIDDEN_GAIN, "shared_dense")(h))


def mlp_torso(
    x: jax.Array,
    hidden: Sequence[int] = (64, 64),
    *,
    activation: Callable[[jax.Array], jax.Array] = jnp.tanh,
) -> jax.Array:
    """Fully connected torso (call inside `hk.transform`).

    Args:
      x: `[B, D]` float observations; `[B, ...]` ones (frames) are flattened to `[B, D]`.
        Atari's frame stacks (`[B, stack, H, W]` or `[B, stack, H, W, 3]`) hold 0–255
        pixel values and are divided by 255 first, as the Nature torso does (a dense
        layer would saturate on them); MinAtar's 0/1 planes are taken as they are.
      hidden: layer widths.
      activation: nonlinearity after each layer (tanh by default).

    Returns:
      `[B, hidden[-1]]` features.
    """
    hidden = _check_hidden(hidden)
    if x.ndim < 2:
        raise ValueError(f"`x` must be [B, D] or [B, ...] observations, got shape {x.shape}.")
    pixels = _is_frame_stack(x.shape[1:])
    x = x.reshape(x.shape[0], -1).astype(jnp.float32)
    if pixels:
        x = x / 255.0
    for i, size in enumerate(hidden):
        x = activation(_dense(size, _HIDDEN_GAIN, f"mlp{i}")(x))
    return x


def torso_features(x: jax.Array, torso: str, hidden: Sequence[int] = (64, 64)) -> jax.Array:
    """The features `[B, F]` of observations `x` from the torso named `torso` (one of
    `TORSOS`; `hidden`: the MLP's widths). Call inside `hk.transform`."""
    if torso == "nature":
        return nature_cnn_torso(x)
    if torso == "minatar":
        return minatar_torso(x)
    return mlp_torso(x, hidden)


def make_actor_critic(
    num_actions: int, *, torso: str = "nature", hidden: Sequence[int] = (64, 64)
) -> hk.Transformed:
    """Actor-critic network: shared torso, a policy-logits head and a value head.

    Args:
      num_actions: A, the number of discrete actions.
      torso: `"nature"` (Atari frames), `"minatar"` (MinAtar images) or `"mlp"`
        (vector observations).
      hidden: MLP widths (only for `torso="mlp"`).

    Returns:
      `hk.Transformed` with `init(rng, obs)` and `apply(params, obs) →
      (logits [B, A], values [B])`.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from softeq.adapters.networks import make_actor_critic
      >>> net = make_actor_critic(2, torso="mlp")
      >>> params = net.init(jax.random.key(0), jnp.zeros((1, 4)))
      >>> logits, values = net.apply(params, jnp.zeros((3, 4)))
      >>> logits.shape, values.shape
      ((3, 2), (3,))
    """
    num_actions = _check_num_actions(num_actions)
    torso = _check_torso(torso)
    hidden = _check_hidden(hidden)

    def forward(obs: jax.Array) -> tuple[jax.Array, jax.Array]:
        features = torso_features(obs, torso, hidden)
        logits = _dense(num_actions, _POLICY_GAIN, "policy")(features)
        values = _dense(1, _VALUE_GAIN, "value")(features)[:, 0]
        return logits, values

    return hk.without_apply_rng(hk.transform(forward))


def make_q_network(
    num_actions: int,
    *,
    torso: str = "nature",
    dueling: bool = False,
    hidden: Sequence[int] = (64, 64),
) -> hk.Transformed:
    """Q-network for DQN-style learners.

    With `dueling=True` the head is Q(s, a) = V(s) + A(s, a) − mean_a A(s, a),
    with separate value and advantage layers on the shared torso.

    Args:
      num_actions: A, the number of discrete actions.
      torso: `"nature"`, `"minatar"` or `"mlp"`.
      dueling: use the dueling head.
      hidden: MLP widths (only for `torso="mlp"`).

    Returns:
      `hk.Transformed` with `apply(params, obs) → q [B, A]`.
    """
    num_actions = _check_num_actions(num_actions)
    torso = _check_torso(torso)
    hidden = _check_hidden(hidden)
    if not isinstance(dueling, bool):
        raise TypeError(f"`dueling` must be a bool, got {dueling!r}.")

    def forward(obs: jax.Array) -> jax.Array:
        features = torso_features(obs, torso, hidden)
        if not dueling:
            return _dense(num_actions, _VALUE_GAIN, "q")(features)
        value = _dense(1, _VALUE_GAIN, "value")(features)
        advantage = _dense(num_actions, _VALUE_GAIN, "advantage")(features)
        return value + advantage - jnp.mean(advantage, axis=-1, keepdims=True)

    return hk.without_apply_rng(hk.transform(forward))


def soft_q_from_actor_critic(
    logits: jax.Array, values: jax.Array, *, temperature: float | jax.Array
) -> jax.Array:
    r"""Dueling soft Q-values of an actor-critic's outputs [E16], paper §6.3.

    $$Q(s, a) = V(s) + \tau \log\pi(a|s),\qquad \pi = \mathrm{softmax}(\text{logits}).$$

    This is the parameterisation [E5] with π̄ ≡ 1 (the entropy-bonus convention): the soft value
    τ·logsumexp(Q/τ) equals V, and the Boltzmann policy softmax(Q/τ) equals π
    (`softeq.core.soft_value` / `boltzmann_log_policy` with `log_prior=0`).

    Args:
      logits: `[..., A]` policy logits.
      values: `[...]` state values.
      temperature: τ > 0.

    Returns:
      `[..., A]` soft Q-values.
    """
    if isinstance(temperature, int | float) and not (
        math.isfinite(temperature) and temperature > 0
    ):
        raise ValueError(f"`temperature` must be a finite number > 0, got {temperature!r}.")
    if logits.ndim < 1 or values.shape != logits.shape[:-1]:
        raise ValueError(
            f"`values` must have the shape of `logits` without its last axis: got logits "
            f"{logits.shape} and values {values.shape}."
        )
    num_actions = logits.shape[-1]
    flat = logits.reshape(-1, num_actions)
    no_prior = jnp.zeros((num_actions,), flat.dtype)
    log_pi = jax.vmap(lambda l: boltzmann_log_policy(l, temperature=1.0, log_prior=no_prior))(flat)
    return values[..., None] + temperature * log_pi.reshape(logits.shape)
