"""Gated PixelCNN (van den Oord et al. 2016, "Conditional Image Generation with PixelCNN
Decoders", arXiv:1606.05328), with cached sampling after Fast PixelCNN++ (Ramachandran
et al. 2017, arXiv:1704.06001).

The image factorizes in raster order, channels in order within a pixel:

    log p(x | y) = sum_{r, c, j} log p(x[r, c, j] | x[< (r, c)], x[r, c, < j], y)

with each factor a categorical or a discretized logistic mixture on the dataset's
levels (`tfgen.distributions`), so `log_prob` is the exact log-probability of the
integer levels: no dequantization, and bits/dim compare directly with the flows'
dequantized bound.

Two stacks remove the original PixelCNN's blind spot. The vertical stack sees every
row above the pixel (its own row too, shifted down one row before the horizontal stack
reads it); the horizontal stack sees the pixels left of it in its row and, through
channel groups, the earlier channels of the pixel itself. Each layer is

    v' = gate(V * v + y_l),   h' = h + W_r gate(H * h + L shift_down(V * v) + y_l)

(`tfgen.layers`), with `y_l` a per-layer projection of the class embedding.

Sampling. `sample_naive` runs the whole network once per (pixel, channel), as keras-io's
PixelCNN does. `sample` (cached, the exported one) computes each new pixel's horizontal
stack from windows of the pixels just left of it and the vertical stack one row at a
time once a row is complete, so the work per pixel is one column of layers, not a whole
image. Both are `tf.while_loop`s of core ops and draw from the same per-row uniforms
(`tfgen.random`), so for the same seed they draw the same values.
"""

from tfgen.backend import keras, tf
from tfgen.contract import LogProbKind
from tfgen.distributions import UNIFORMS_PER_DRAW, draw_on_levels, on_levels, parameter_count
from tfgen.errors import UserError
from tfgen.layers import MaskedConv2D, ResidualSkip, gated_activation
from tfgen.models.base import register
from tfgen.models.likelihood import LikelihoodModel
from tfgen.random import per_row_uniform
from tfgen.serialization import attribute_config

_HYPERPARAMETERS = ("num_layers", "filters", "kernel_size", "head_units", "likelihood", "num_components",
                    "condition_dim")


def shift_down(features):
    """`[B, H, W, C]` moved down one row, zeros in the first."""
    return tf.pad(features, [[0, 0], [1, 0], [0, 0], [0, 0]])[:, :-1]


@register
class GatedPixelCNN(LikelihoodModel):
    """Gated PixelCNN on images with discrete levels, grey or colour, optionally
    class-conditional (module docstring).

    Args:
      data_spec: an image `DataSpec` with `levels` (and `num_classes` to condition).
      num_layers: gated layers in each stack.
      filters: features of each stack (a multiple of the image's channels).
      kernel_size: odd size >= 3 of the masked kernels.
      head_units: features of the 1x1 output network.
      likelihood: "categorical" (a softmax over the levels per channel) or
        "discretized_logistic_mixture" (PixelCNN++).
      num_components: logistic mixture components (mixture only).
      condition_dim: size of the class embedding (conditional models only).
      **kwargs: passed to `keras.Model`.

    Example:

        spec = {"event_shape": [8, 8, 1], "kind": "image", "levels": 17, "num_classes": 10}
        model = GatedPixelCNN(spec, num_layers=4, filters=32)
        x = model.sample(tf.constant([0, 1], tf.int64), condition=tf.constant([3, 7]))
        model.log_prob(x, tf.constant([3, 7]))   # exact, in nats
    """

    family = "autoregressive"
    log_prob_kind = LogProbKind.EXACT

    def __init__(self, data_spec, num_layers=5, filters=32, kernel_size=3, head_units=64,
                 likelihood="categorical", num_components=5, condition_dim=16, **kwargs):
        super().__init__(data_spec, **kwargs)
        spec = self.data_spec
        if spec.kind != "image" or len(spec.event_shape) != 3 or not spec.is_discrete:
            raise UserError(f"GatedPixelCNN models images [H, W, C] with levels, got {spec.kind} data of shape "
                            f"{spec.event_shape} with levels={spec.levels}")
        self.num_layers, self.filters, self.kernel_size = int(num_layers), int(filters), int(kernel_size)
        self.head_units, self.likelihood = int(head_units), likelihood
        self.num_components, self.condition_dim = int(num_components), int(condition_dim)
        self.height, self.width, self.channels = spec.event_shape
        if self.num_layers < 1 or self.kernel_size < 3 or self.kernel_size % 2 == 0:
            raise UserError(f"GatedPixelCNN needs num_layers >= 1 and an odd kernel_size >= 3, got "
                            f"{num_layers}, {kernel_size}")
        if self.filters % self.channels or self.head_units % self.channels:
            raise UserError(f"filters ({filters}) and head_units ({head_units}) must be multiples of the "
                            f"image's {self.channels} channels (one feature group per channel)")
        self.num_params = parameter_count(likelihood, spec.levels, num_components)

        self._traced_sample = None  # sample's tf.function, made on the first eager call

        # === Layers ===
        groups = self.channels

        def masked_1x1(units, name):
            return MaskedConv2D(units, 1, stack="horizontal", mask_type="B", num_groups=groups, name=name)

        self.vertical = [MaskedConv2D(2 * self.filters, self.kernel_size, stack="vertical", name=f"vertical_{i}")
                         for i in range(self.num_layers)]
        self.horizontal = [MaskedConv2D(2 * self.filters, self.kernel_size, stack="horizontal",
                                        mask_type="A" if i == 0 else "B", num_groups=groups, name=f"horizontal_{i}")
                           for i in range(self.num_layers)]
        self.vertical_to_horizontal = [keras.layers.Dense(2 * self.filters, name=f"vertical_to_horizontal_{i}")
                                       for i in range(self.num_layers)]
        self.residual = [ResidualSkip(self.filters, residual=i > 0, projection=masked_1x1, name=f"residual_{i}")
                         for i in range(self.num_layers)]
        self.head = [masked_1x1(self.head_units, "head_hidden"),
                     masked_1x1(self.num_params * self.channels, "head_out")]
        if spec.conditional:
            self.embedding = keras.layers.Embedding(spec.num_classes, self.condition_dim, name="class_embedding")
            self.condition_projection = [keras.layers.Dense(2 * self.filters, use_bias=False, name=f"condition_{i}")
                                         for i in range(self.num_layers)]

    # === The network ===
    def _normalize(self, x):
        return x * (2.0 / (self.data_spec.levels - 1)) - 1.0

    def _condition_biases(self, condition):
        """Per layer, `[B, 1, 1, 2F]` class biases of the gates (0 if unconditional)."""
        if not self.data_spec.conditional:
            return [0.0] * self.num_layers
        embedded = self.embedding(tf.cast(condition, tf.int32))
        return [projection(embedded)[:, None, None, :] for projection in self.condition_projection]

    def _head(self, h):
        """`[B, H', W', F]` -> parameters `[B, H', W', C, num_params]`."""
        out = self.head[1](tf.nn.relu(self.head[0](tf.nn.relu(h))))
        # Output feature p * C + c belongs to channel group c (MaskedConv2D's i % groups).
        out = tf.reshape(out, tf.concat([tf.shape(out)[:3], [self.num_params, self.channels]], 0))
        return tf.transpose(out, [0, 1, 2, 4, 3])

    def parameters(self, x, condition=None):
        """The likelihood's parameters of every dimension, `[B, H, W, C, num_params]`:
        position (r, c, j) depends only on earlier pixels and channels."""
        biases = self._condition_biases(condition)
        v = h = self._normalize(tf.convert_to_tensor(x, tf.float32))
        for i in range(self.num_layers):
            v_pre = self.vertical[i](v) + biases[i]
            h_pre = self.horizontal[i](h) + self.vertical_to_horizontal[i](shift_down(v_pre)) + biases[i]
            v = gated_activation(v_pre)
            h, _ = self.residual[i](h, gated_activation(h_pre))
        return self._head(h)

    def distribution(self, x, condition=None):
        """The model's distribution given `x`'s pixels as context (teacher forcing)."""
        return on_levels(self.likelihood, self.parameters(x, condition), self.data_spec.levels, event_ndims=3,
                         num_components=self.num_components)

    # === Contract ===
    def log_prob(self, x, condition=None):
        x = tf.convert_to_tensor(x, tf.float32)
        return self.distribution(x, condition).log_prob(x)

    def _draw(self, params, uniforms, temperature):
        return draw_on_levels(self.likelihood, params, self.data_spec.levels, uniforms, temperature,
                              self.num_components)

    def _sampling_inputs(self, seed, temperature):
        seed = tf.convert_to_tensor(seed, tf.int64)
        temperature = tf.broadcast_to(tf.convert_to_tensor(temperature, tf.float32), tf.shape(seed))
        uniforms = per_row_uniform(seed, [self.height * self.width, self.channels, UNIFORMS_PER_DRAW])
        return seed, temperature, uniforms

    def sample_naive(self, seed, temperature=1.0, condition=None):
        """Samples by running the whole network once per dimension (the reference the
        cached `sample` matches; O(H W C) full passes)."""
        seed, temperature, uniforms = self._sampling_inputs(seed, temperature)
        num_dims = self.data_spec.num_dims
        uniforms = tf.reshape(uniforms, [-1, num_dims, UNIFORMS_PER_DRAW])
        shape = tf.concat([tf.shape(seed), self.data_spec.event_shape], 0)

        def step(t, x):
            params = tf.reshape(self.parameters(x, condition), [-1, num_dims, self.num_params])
            value = self._draw(tf.gather(params, t, axis=1), tf.gather(uniforms, t, axis=1), temperature)
            at_t = tf.reshape(tf.one_hot(t, num_dims), [1, *self.data_spec.event_shape])
            return t + 1, x + at_t * value[:, None, None, None]

        _, x = tf.while_loop(lambda t, _: t < num_dims, step, (tf.constant(0), tf.zeros(shape)))
        return x

    def sample(self, seed, temperature=1.0, condition=None):
        """One sample per int64 seed, cached: each pixel costs one column of layers, each
        completed row one row of the vertical stack (module docstring). Draws exactly
        what `sample_naive` draws for the same seeds, up to float rounding of ties."""
        if not self.head[-1].built:  # the cached steps call the layers' weights directly
            self.parameters(tf.zeros([1, *self.data_spec.event_shape]),
                            None if condition is None else condition[:1])
        if tf.executing_eagerly():  # a Python loop of thousands of steps would crawl
            if self._traced_sample is None:
                self._traced_sample = tf.function(self._cached_sample, autograph=False)
            return self._traced_sample(seed, temperature, condition)
        return self._cached_sample(seed, temperature, condition)

    def _cached_sample(self, seed, temperature=1.0, condition=None):
        seed, temperature, uniforms = self._sampling_inputs(seed, temperature)
        height, width, channels, layers = self.height, self.width, self.channels, self.num_layers
        taps = self.kernel_size // 2  # rows above / pixels left that a kernel reads
        biases = self._condition_biases(condition)
        widths = [channels] + [self.filters] * (layers - 1)  # inputs of each layer

        row_zeros = tf.zeros_like(temperature)

        def zeros(*shape):  # [B, *shape], with the batch's static size when it has one
            return tf.reshape(row_zeros, [-1] + [1] * len(shape)) + tf.zeros([1, *shape])

        def pixel_step(r, links, c, x, windows):
            """Pixel (r, c): `windows[i]` holds layer i's inputs at the `taps` pixels to
            its left. Returns the pixel and the windows of pixel (r, c + 1)."""
            pixel = zeros(channels)
            noise = tf.gather(uniforms, r * width + c, axis=1)
            for j in range(channels):
                # Channels >= j of the pixel are still 0; the masks hide them from group j.
                inputs = tf.concat([windows[0], self._normalize(pixel)[:, None, None, :]], axis=2)
                stack_inputs = [inputs]
                for i in range(layers):
                    h_pre = (self.horizontal[i].call_valid(inputs) + tf.gather(links[i], [c], axis=2)
                             + biases[i])
                    h, _ = self.residual[i](inputs[:, :, -1:], gated_activation(h_pre))
                    if i + 1 < layers:
                        inputs = tf.concat([windows[i + 1], h], axis=2)
                        stack_inputs.append(inputs)
                params = self._head(h)[:, 0, 0, j]
                value = self._draw(params, noise[:, j], temperature)
                pixel = pixel + tf.one_hot(j, channels) * value[:, None]
            # Layer 0 reads the finished pixel; deeper windows already hold final values
            # (no group sees the last channel of its own pixel).
            stack_inputs[0] = tf.concat([windows[0], self._normalize(pixel)[:, None, None, :]], axis=2)
            at_rc = tf.reshape(tf.one_hot(r * width + c, height * width), [1, height, width, 1])
            return x + at_rc * pixel[:, None, None, :], [w[:, :, 1:] for w in stack_inputs]

        def row_step(r, x, vertical_windows, links):
            """Row r, then the vertical stack of row r: the links row r + 1 reads."""
            def column(c, x, windows):
                x, windows = pixel_step(r, links, c, x, windows)
                return c + 1, x, windows

            start = (tf.constant(0), x, [zeros(1, taps, n) for n in widths])
            _, x, _ = tf.while_loop(lambda c, *_: c < width, column, start)
            row = self._normalize(tf.gather(x, [r], axis=1))
            new_windows, new_links = [], []
            for i in range(layers):
                window = tf.concat([vertical_windows[i][:, 1:], row], axis=1)
                new_windows.append(window)
                padded = tf.pad(window, [[0, 0], [0, 0], [taps, taps], [0, 0]])
                v_pre = self.vertical[i].call_valid(padded) + biases[i]
                new_links.append(self.vertical_to_horizontal[i](v_pre))
                row = gated_activation(v_pre)
            return r + 1, x, new_windows, new_links

        first_links = [self.vertical_to_horizontal[i](zeros(1, width, 2 * self.filters)) for i in range(layers)]
        start = (tf.constant(0), zeros(height, width, channels), [zeros(taps + 1, width, n) for n in widths],
                 first_links)
        _, x, _, _ = tf.while_loop(lambda r, *_: r < height, row_step, start)
        return x

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **attribute_config(self, _HYPERPARAMETERS)}
