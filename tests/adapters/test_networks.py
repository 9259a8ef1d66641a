"""Tests of softeq.adapters.networks: shapes, initialisation, dueling and soft-Q heads.

The soft-Q identities are exact in real arithmetic, so they are checked in
float64 (x64 switched on per test with `jax.enable_x64`), where the only error
is rounding of a logsumexp over a handful of terms: rtol = atol = 1e-12.
"""

from __future__ import annotations

import haiku as hk
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from softeq.adapters.networks import (
    make_actor_critic,
    make_q_network,
    minatar_torso,
    mlp_torso,
    nature_cnn_torso,
    soft_q_from_actor_critic,
    torso_for_observation,
    weight_gradient_as_transpose,
)
from softeq.core import boltzmann_log_policy, soft_value

FRAMES = (4, 84, 84)  # the layout of softeq.adapters.envs: stack first


def _frames(batch: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (batch, *FRAMES), dtype=np.uint8)


@pytest.fixture(scope="module")
def nature_actor_critic():
    """One Nature-CNN actor-critic, initialised once (orthogonal init of the
    3136 × 512 layer is the slow part of these tests)."""
    net = make_actor_critic(6, torso="nature")
    return net, jax.jit(net.init)(jax.random.key(0), _frames(1))


def _reference_torso(params, x: np.ndarray) -> jax.Array:
    """The Nature torso written out with lax convolutions, for [B, stack, H, W] frames."""
    h = jnp.transpose(jnp.asarray(x, jnp.float32), (0, 2, 3, 1)) / 255.0
    for name, stride in (("conv0", 4), ("conv1", 2), ("conv2", 1)):
        h = jax.lax.conv_general_dilated(
            h,
            params[name]["w"],
            window_strides=(stride, stride),
            padding="VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        h = jax.nn.relu(h + params[name]["b"])
    h = h.reshape(h.shape[0], -1)
    return jax.nn.relu(h @ params["shared_dense"]["w"] + params["shared_dense"]["b"])


def test_actor_critic_nature_shapes_and_parameters(nature_actor_critic):
    net, params = nature_actor_critic
    shapes = {name: {k: v.shape for k, v in layer.items()} for name, layer in params.items()}
    assert shapes == {
        "conv0": {"w": (8, 8, 4, 32), "b": (32,)},
        "conv1": {"w": (4, 4, 32, 64), "b": (64,)},
        "conv2": {"w": (3, 3, 64, 64), "b": (64,)},
        "shared_dense": {"w": (7 * 7 * 64, 512), "b": (512,)},
        "policy": {"w": (512, 6), "b": (6,)},
        "value": {"w": (512, 1), "b": (1,)},
    }
    logits, values = jax.jit(net.apply)(params, _frames(5, seed=1))
    assert logits.shape == (5, 6) and values.shape == (5,)
    assert logits.dtype == jnp.float32 and values.dtype == jnp.float32
    # the 0.01 policy gain starts the policy close to uniform
    probs = jax.nn.softmax(logits)
    assert float(jnp.max(jnp.abs(probs - 1 / 6))) < 0.01


def test_nature_torso_matches_written_out_reference(nature_actor_critic):
    _, params = nature_actor_critic
    torso_params = {k: params[k] for k in ("conv0", "conv1", "conv2", "shared_dense")}
    f = hk.without_apply_rng(hk.transform(nature_cnn_torso))
    x = _frames(3, seed=2)
    features = f.apply(torso_params, x)
    assert features.shape == (3, 512) and features.dtype == jnp.float32
    # float32 sums of up to 3136 terms of size O(1): agreement to 1e-5 relative
    # (1e-6 absolute for the many exact zeros after the ReLU) is rounding only.
    reference = _reference_torso(torso_params, x)
    np.testing.assert_allclose(features, reference, rtol=1e-5, atol=1e-6)
    # float pixel values are scaled the same way as uint8 ones
    np.testing.assert_allclose(f.apply(torso_params, x.astype(np.float32)), features, rtol=1e-6)
    # the stack order matters (it becomes the channel order)
    assert not np.allclose(f.apply(torso_params, x[:, ::-1]), features)
    # the heads sit on these features: one more float32 product over 512 of them,
    # whose rounding (and XLA's order of summation) allows 1e-4 relative
    net_logits, net_values = nature_actor_critic[0].apply(params, x)
    np.testing.assert_allclose(
        net_values,
        (reference @ params["value"]["w"] + params["value"]["b"])[:, 0],
        rtol=1e-4,
        atol=1e-6,
    )
    np.testing.assert_allclose(
        net_logits, reference @ params["policy"]["w"] + params["policy"]["b"], rtol=1e-4, atol=1e-7
    )


def test_nature_torso_rgb_stacks_colour_into_channels(nature_actor_critic):
    f = hk.without_apply_rng(hk.transform(nature_cnn_torso))
    x = np.random.default_rng(2).integers(0, 256, (2, 4, 84, 84, 3), dtype=np.uint8)
    shapes = jax.eval_shape(f.init, jax.random.key(0), x)
    assert shapes["conv0"]["w"].shape == (8, 8, 12, 32)
    # reuse the grayscale weights with a random 12-channel first layer
    _, params = nature_actor_critic
    params = {k: params[k] for k in ("conv0", "conv1", "conv2", "shared_dense")}
    w0 = jax.random.normal(jax.random.key(5), (8, 8, 12, 32)) * 0.05
    params["conv0"] = {"w": w0, "b": params["conv0"]["b"]}
    features = f.apply(params, x)
    assert features.shape == (2, 512)
    # channel 3·k + c holds colour c of stacked frame k
    merged = np.transpose(x, (0, 2, 3, 1, 4)).reshape(2, 84, 84, 12)
    as_channels_first = np.transpose(merged, (0, 3, 1, 2))
    np.testing.assert_allclose(
        features, _reference_torso(params, as_channels_first), rtol=1e-5, atol=1e-6
    )


# Small nets share layer shapes (obs 4, hidden 64, 64, 6 actions), so that the
# orthogonal initialiser is compiled for few distinct shapes.
MLP_OBS = np.random.default_rng(0).normal(size=(5, 4)).astype(np.float32)


def test_mlp_actor_critic_and_torso_widths():
    net = make_actor_critic(6, torso="mlp")
    params = net.init(jax.random.key(0), MLP_OBS)
    logits, values = net.apply(params, MLP_OBS)
    assert logits.shape == (5, 6) and values.shape == (5,)
    features = hk.without_apply_rng(hk.transform(mlp_torso)).apply(params, MLP_OBS)
    assert features.shape == (5, 64) and bool(jnp.all(jnp.abs(features) < 1))  # tanh
    np.testing.assert_allclose(
        values, (features @ params["value"]["w"] + params["value"]["b"])[:, 0], rtol=1e-5
    )
    # other widths: shapes only (no initialisation needed)
    wide = make_actor_critic(3, torso="mlp", hidden=(32, 16, 8))
    shapes = jax.eval_shape(wide.init, jax.random.key(0), jnp.zeros((2, 7)))
    assert [shapes[f"mlp{i}"]["w"].shape for i in range(3)] == [(7, 32), (32, 16), (16, 8)]
    assert shapes["policy"]["w"].shape == (8, 3)


def test_mlp_torso_scales_atari_frames_to_unit_range_and_leaves_minatar_planes():
    """Atari frames are 0–255 pixels: flattened unscaled, the first tanh layer (orthogonal
    weights, gain √2, over 28 224 inputs) saturates in almost every unit."""
    mlp = hk.without_apply_rng(hk.transform(lambda x: mlp_torso(x, hidden=(64,))))
    frames = jax.random.randint(jax.random.key(0), (3, 4, 84, 84), 0, 256).astype(jnp.uint8)
    params = mlp.init(jax.random.key(1), frames)
    features = mlp.apply(params, frames)
    as_vectors = mlp.apply(params, frames.reshape(3, -1).astype(jnp.float32) / 255.0)
    np.testing.assert_allclose(features, as_vectors, rtol=1e-5, atol=1e-6)
    assert float(jnp.mean(jnp.abs(features) > 0.99)) < 0.2
    unscaled = mlp.apply(params, frames.reshape(3, -1).astype(jnp.float32))
    assert float(jnp.mean(jnp.abs(unscaled) > 0.99)) > 0.9  # what the division prevents
    planes = jax.random.bernoulli(jax.random.key(2), 0.3, (3, 10, 10, 4)).astype(jnp.uint8)
    params = mlp.init(jax.random.key(1), planes)
    np.testing.assert_array_equal(
        mlp.apply(params, planes), mlp.apply(params, planes.reshape(3, -1).astype(jnp.float32))
    )


def test_orthogonal_initialisation_gains():
    net = make_actor_critic(6, torso="mlp")
    params = net.init(jax.random.key(3), MLP_OBS)
    # columns of an orthogonal [in, out] matrix with in >= out are orthonormal × gain;
    # the check is float32 rounding of 64-term dot products (1e-5 relative)
    for name, gain in (("mlp1", np.sqrt(2)), ("policy", 0.01), ("value", 1.0)):
        w = np.asarray(params[name]["w"], np.float64)
        np.testing.assert_allclose(w.T @ w, gain**2 * np.eye(w.shape[1]), atol=1e-5 * gain**2)
        assert np.all(np.asarray(params[name]["b"]) == 0)


@pytest.mark.parametrize("torso,obs", [("nature", _frames(3)), ("mlp", MLP_OBS[:3])])
@pytest.mark.parametrize("dueling", [False, True])
def test_q_network_shapes(torso, obs, dueling):
    net = make_q_network(6, torso=torso, dueling=dueling)
    params = jax.eval_shape(net.init, jax.random.key(0), obs)
    assert jax.eval_shape(net.apply, params, obs).shape == (3, 6)
    assert ("advantage" in params) == dueling and ("q" in params) == (not dueling)


def test_dueling_head_is_value_plus_centred_advantage():
    net = make_q_network(6, torso="mlp", dueling=True)
    params = net.init(jax.random.key(0), MLP_OBS)

    def zero(layer):
        return jax.tree.map(jnp.zeros_like, layer)

    # With the value stream off, the Q-values are centred advantages: mean zero.
    no_value = {**params, "value": zero(params["value"])}
    q = net.apply(no_value, MLP_OBS)
    np.testing.assert_allclose(jnp.mean(q, axis=-1), 0.0, atol=1e-6)
    assert float(jnp.std(q)) > 0.01
    # With the advantage stream off, every action gets the state value.
    no_advantage = {**params, "advantage": zero(params["advantage"])}
    v = net.apply(no_advantage, MLP_OBS)
    np.testing.assert_array_equal(v, jnp.broadcast_to(v[:, :1], v.shape))
    # In general Q = V + A − mean A: the mean over actions is V and the
    # differences are those of the advantage stream (float32 rounding: 1e-5).
    q_full = net.apply(params, MLP_OBS)
    np.testing.assert_allclose(jnp.mean(q_full, axis=-1), v[:, 0], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(q_full - v, q, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("temperature", [0.01, 0.3, 1.0, 7.0])
def test_soft_q_head_identities(temperature):
    """Q = V + τ log π has soft value V and Boltzmann policy π (π̄ ≡ 1) [E16]."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(int(temperature * 100))
        logits = jnp.asarray(rng.normal(scale=3.0, size=(2, 5, 6)))
        values = jnp.asarray(rng.normal(scale=10.0, size=(2, 5)))
        q = soft_q_from_actor_critic(logits, values, temperature=temperature)
        assert q.shape == (2, 5, 6) and q.dtype == jnp.float64
        no_prior = jnp.zeros(6)
        flat_q = q.reshape(-1, 6)
        v = jax.vmap(lambda row: soft_value(row, temperature=temperature, log_prior=no_prior))(
            flat_q
        )
        np.testing.assert_allclose(v, values.reshape(-1), rtol=1e-12, atol=1e-12)
        log_pi = jax.vmap(
            lambda row: boltzmann_log_policy(row, temperature=temperature, log_prior=no_prior)
        )(flat_q)
        np.testing.assert_allclose(
            log_pi, jax.nn.log_softmax(logits).reshape(-1, 6), rtol=1e-12, atol=1e-12
        )
        # the usual uniform-prior soft value is lower by τ log A
        v_uniform = jax.vmap(lambda row: soft_value(row, temperature=temperature))(flat_q)
        np.testing.assert_allclose(
            v_uniform, values.reshape(-1) - temperature * np.log(6), rtol=1e-12, atol=1e-12
        )


def test_soft_q_head_on_network_outputs_and_gradients():
    net = make_actor_critic(6, torso="mlp")
    obs = MLP_OBS
    params = net.init(jax.random.key(0), obs)

    def mean_q(p):
        logits, values = net.apply(p, obs)
        return jnp.mean(soft_q_from_actor_critic(logits, values, temperature=0.1))

    grads = jax.jit(jax.grad(mean_q))(params)
    assert all(bool(jnp.all(jnp.isfinite(g))) for g in jax.tree.leaves(grads))
    assert float(jnp.abs(grads["value"]["w"]).sum()) > 0


def test_torso_for_observation():
    assert torso_for_observation((4, 84, 84)) == "nature"
    assert torso_for_observation((4, 84, 84, 3)) == "nature"
    assert torso_for_observation((6,)) == "mlp"
    with pytest.raises(ValueError, match=r"`observation_shape`.*\(2, 3\)"):
        torso_for_observation((2, 3))


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"`torso`.*'resnet'"):
        make_actor_critic(4, torso="resnet")
    with pytest.raises(ValueError, match=r"`num_actions`.*0"):
        make_q_network(0, torso="mlp")
    with pytest.raises(ValueError, match=r"`hidden`"):
        make_actor_critic(2, torso="mlp", hidden=())
    with pytest.raises(TypeError, match="dueling"):
        make_q_network(2, torso="mlp", dueling="yes")
    net = make_actor_critic(2, torso="nature")
    with pytest.raises(ValueError, match=r"`x`.*\[B, stack, H, W\]"):
        net.init(jax.random.key(0), np.zeros((84, 84), np.uint8))
    with pytest.raises(ValueError, match="merge any extra leading axes"):  # [T, B, 4, 84, 84]
        net.init(jax.random.key(0), np.zeros((5, 2, *FRAMES), np.uint8))
    mlp = make_actor_critic(2, torso="mlp")
    with pytest.raises(ValueError, match=r"`x`.*\[B, D\]"):
        mlp.init(jax.random.key(0), np.zeros(4, np.float32))
    with pytest.raises(ValueError, match=r"`temperature`.*0"):
        soft_q_from_actor_critic(jnp.zeros((2, 3)), jnp.zeros(2), temperature=0.0)
    with pytest.raises(ValueError, match="`values`"):
        soft_q_from_actor_critic(jnp.zeros((2, 3)), jnp.zeros(3), temperature=1.0)


def test_minatar_torso_is_the_conv_16_3x3_dense_128_network():
    # The im2col convolution must equal lax's convolution with the same kernel; both sum
    # the same 9·C products in float32, in possibly different orders: rtol 1e-5.
    net = make_actor_critic(5, torso="minatar")
    x = (np.random.default_rng(0).random((6, 10, 10, 7)) > 0.6).astype(np.uint8)
    params = jax.jit(net.init)(jax.random.key(0), x)
    shapes = {name: {k: v.shape for k, v in layer.items()} for name, layer in params.items()}
    assert shapes["conv"] == {"w": (3, 3, 7, 16), "b": (16,)}
    assert shapes["shared_dense"] == {"w": (8 * 8 * 16, 128), "b": (128,)}
    h = jax.lax.conv_general_dilated(
        jnp.asarray(x, jnp.float32),
        params["conv"]["w"],
        window_strides=(1, 1),
        padding="VALID",
        dimension_numbers=("NHWC", "HWIO", "NHWC"),
    )
    h = jax.nn.relu(h + params["conv"]["b"]).reshape(6, -1)
    h = jax.nn.relu(h @ params["shared_dense"]["w"] + params["shared_dense"]["b"])
    logits, values = net.apply(params, x)
    np.testing.assert_allclose(
        logits, h @ params["policy"]["w"] + params["policy"]["b"], rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(values, (h @ params["value"]["w"])[:, 0], rtol=1e-5, atol=1e-6)
    assert torso_for_observation((10, 10, 7)) == "minatar"
    q_net = make_q_network(5, torso="minatar")
    assert q_net.apply(q_net.init(jax.random.key(1), x), x).shape == (6, 5)
    with pytest.raises(ValueError, match=r"\[B, 10, 10, C\]"):
        hk.transform(minatar_torso).init(jax.random.key(0), jnp.zeros((2, 4, 84, 84)))


def _haiku_minatar_torso(x: jax.Array) -> jax.Array:
    """The MinAtar torso written with haiku's own layers: hk.Conv2D + hk.Linear."""
    orthogonal = hk.initializers.Orthogonal(scale=np.sqrt(2.0))
    conv = hk.Conv2D(16, 3, padding="VALID", w_init=orthogonal, b_init=jnp.zeros, name="conv")
    h = jax.nn.relu(conv(x.astype(jnp.float32))).reshape(x.shape[0], -1)
    dense = hk.Linear(128, w_init=orthogonal, b_init=jnp.zeros, name="shared_dense")
    return jax.nn.relu(dense(h))


def _squared_features(torso):
    return hk.without_apply_rng(hk.transform(lambda x: jnp.sum(torso(x) ** 2)))


def _assert_close_to(actual, expected, rtol: float) -> None:
    """Elementwise within rtol of the expected array's largest magnitude."""
    for a, e in zip(jax.tree.leaves(actual), jax.tree.leaves(expected), strict=True):
        e = np.asarray(e)
        np.testing.assert_allclose(a, e, rtol=rtol, atol=rtol * float(np.max(np.abs(e))))


def test_minatar_torso_equals_haiku_conv2d_and_linear_also_vmapped_over_seeds():
    # Same parameters (names, shapes, initial values from the same key) as hk.Conv2D +
    # hk.Linear; features and parameter gradients agree within float32 rounding of sums
    # taken in other orders (features: 9·C-term conv sums feeding 1024-term dense sums;
    # gradients: sums over 64·B windows): 1e-5 of the largest magnitude, and the same
    # with the parameters of 3 seeds vmapped, lane by lane against the unbatched haiku net.
    x = (np.random.default_rng(4).random((12, 10, 10, 4)) < 0.2).astype(np.uint8)
    ours = hk.without_apply_rng(hk.transform(minatar_torso))
    reference = hk.without_apply_rng(hk.transform(_haiku_minatar_torso))
    params = ours.init(jax.random.key(7), x)
    reference_params = reference.init(jax.random.key(7), x)
    assert jax.tree.structure(params) == jax.tree.structure(reference_params)
    jax.tree.map(np.testing.assert_array_equal, params, reference_params)
    _assert_close_to(ours.apply(params, x), reference.apply(params, x), rtol=1e-5)
    grads = jax.grad(_squared_features(minatar_torso).apply)(params, x)
    expected = jax.grad(_squared_features(_haiku_minatar_torso).apply)(params, x)
    _assert_close_to(grads, expected, rtol=1e-5)

    keys = jax.random.split(jax.random.key(8), 3)
    seed_params = jax.vmap(ours.init, in_axes=(0, None))(keys, x)
    seed_x = np.stack([x, x[::-1], 1 - x])
    features = jax.jit(jax.vmap(ours.apply))(seed_params, seed_x)
    seed_grads = jax.jit(jax.vmap(jax.grad(_squared_features(minatar_torso).apply)))(
        seed_params, seed_x
    )
    for lane in range(3):
        lane_params = jax.tree.map(lambda a, lane=lane: a[lane], seed_params)
        _assert_close_to(features[lane], reference.apply(lane_params, seed_x[lane]), rtol=1e-5)
        lane_expected = jax.grad(_squared_features(_haiku_minatar_torso).apply)(
            lane_params, seed_x[lane]
        )
        _assert_close_to(
            jax.tree.map(lambda a, lane=lane: a[lane], seed_grads), lane_expected, 1e-5
        )


def test_minatar_torso_takes_float_planes_like_uint8():
    x = (np.random.default_rng(5).random((3, 10, 10, 6)) < 0.3).astype(np.uint8)
    net = hk.without_apply_rng(hk.transform(minatar_torso))
    params = net.init(jax.random.key(0), x)
    np.testing.assert_array_equal(net.apply(params, x), net.apply(params, x.astype(np.float32)))


def test_weight_gradient_as_transpose_changes_no_value_or_derivative():
    # The same products and sums in another memory layout: the value is w itself and
    # the gradient of x @ w equals autodiff's plain one up to summation order (1e-6 of
    # the largest entry); forward mode (jvp) goes through as well.
    rng = np.random.default_rng(6)
    x = jnp.asarray(rng.normal(size=(40, 24)), jnp.float32)
    w = jnp.asarray(rng.normal(size=(24, 8)), jnp.float32)
    np.testing.assert_array_equal(weight_gradient_as_transpose(w), w)

    def loss(w, through):
        return jnp.sum(jnp.tanh(x @ (weight_gradient_as_transpose(w) if through else w)))

    _assert_close_to(jax.grad(loss)(w, True), jax.grad(loss)(w, False), rtol=1e-6)
    _assert_close_to(
        jax.vmap(jax.grad(loss), in_axes=(0, None))(jnp.stack([w, -w]), True),
        jnp.stack([jax.grad(loss)(w, False), jax.grad(loss)(-w, False)]),
        rtol=1e-6,
    )
    tangent = jnp.ones_like(w)
    _, through = jax.jvp(lambda w: loss(w, True), (w,), (tangent,))
    _, plain = jax.jvp(lambda w: loss(w, False), (w,), (tangent,))
    np.testing.assert_allclose(through, plain, rtol=1e-5)
