"""Denoising networks of the diffusion and score families, each `(x, t, condition) -> [B, *event]`.

- `SinusoidalEmbedding`: Transformer-style features of a float per row (a diffusion
  time step, or log sigma of a score model): [sin(t w_k), cos(t w_k)] with
  w_k = max_period^(-k / (dim/2)) * scale (Vaswani et al. 2017; Ho et al. 2020).
- `TimeEmbedding`: that embedding through a two-layer MLP (dense, swish, dense).
- `MLPDenoiser`: vectors; the time (and class) embedding is added to every hidden layer.
- `UNet`: images; residual blocks (group norm, swish, 3x3 convolution, the embedding
  added per channel), average-pool down and nearest-neighbour up sampling with skip
  connections, optional self-attention at the lowest resolution (Ho et al. 2020,
  arXiv:2006.11239, the keras-io `ddpm.py` shape at a small scale).

Class conditioning: `condition` is int32 `[B]` in 0 .. num_classes, where `num_classes`
itself is the null class (no label), which classifier-free guidance (Ho & Salimans 2022,
arXiv:2207.12598) trains by label dropout and samples against. `condition=None` on a
conditional network means the null class for every row.
"""

import math

from tfgen.backend import keras, tf


def _serializable(cls):
    return keras.saving.register_keras_serializable(package="tfgen")(cls)


@_serializable
class SinusoidalEmbedding(keras.layers.Layer):
    """`t [B] float -> [B, dim]` sinusoidal features.

    Args:
      dim: even output width.
      scale: multiplies t first (1000 for t in [0, 1]; 1 for integer steps or log sigma).
      max_period: the longest period, in units of scaled t.
    """

    def __init__(self, dim, scale=1.0, max_period=10000.0, **kwargs):
        super().__init__(**kwargs)
        if int(dim) < 2 or int(dim) % 2:
            raise ValueError(f"SinusoidalEmbedding dim must be even and >= 2, got {dim!r}")
        self.dim = int(dim)
        self.scale = float(scale)
        self.max_period = float(max_period)

    def call(self, t):
        half = self.dim // 2
        frequencies = tf.exp(-math.log(self.max_period) * tf.range(half, dtype=tf.float32) / half)
        angles = tf.reshape(tf.cast(t, tf.float32) * self.scale, [-1, 1]) * frequencies[None, :]
        return tf.concat([tf.sin(angles), tf.cos(angles)], -1)

    def get_config(self):
        return {**super().get_config(), "dim": self.dim, "scale": self.scale, "max_period": self.max_period}


@_serializable
class TimeEmbedding(keras.layers.Layer):
    """`t [B] -> [B, units]`: sinusoidal features, dense, swish, dense.

    Args:
      units: output width.
      sinusoidal_dim: width of the sinusoidal features (default: units).
      scale, max_period: of `SinusoidalEmbedding`.
    """

    def __init__(self, units, sinusoidal_dim=None, scale=1.0, max_period=10000.0, **kwargs):
        super().__init__(**kwargs)
        self.units = int(units)
        self.sinusoidal_dim = int(sinusoidal_dim or units)
        self.scale = float(scale)
        self.max_period = float(max_period)
        self.sinusoidal = SinusoidalEmbedding(self.sinusoidal_dim, self.scale, self.max_period, name="sinusoidal")
        self.hidden = keras.layers.Dense(self.units, activation="swish", name="hidden")
        self.out = keras.layers.Dense(self.units, name="out")

    def call(self, t):
        return self.out(self.hidden(self.sinusoidal(t)))

    def get_config(self):
        return {**super().get_config(), "units": self.units, "sinusoidal_dim": self.sinusoidal_dim,
                "scale": self.scale, "max_period": self.max_period}


class _Conditioning(keras.layers.Layer):
    """The time embedding plus, for conditional networks, a class embedding with a null
    class (index num_classes): `(t, condition) -> [B, embedding_dim]`."""

    def __init__(self, embedding_dim, num_classes=None, time_scale=1.0, **kwargs):
        super().__init__(**kwargs)
        self.embedding_dim = int(embedding_dim)
        self.num_classes = None if num_classes is None else int(num_classes)
        self.time_scale = float(time_scale)
        self.time_embedding = TimeEmbedding(self.embedding_dim, scale=self.time_scale, name="time_embedding")
        self.class_embedding = (None if self.num_classes is None else
                                keras.layers.Embedding(self.num_classes + 1, self.embedding_dim,
                                                       name="class_embedding"))

    def embed(self, t, condition):
        embedding = self.time_embedding(t)
        if self.class_embedding is not None:
            if condition is None:
                condition = tf.fill(tf.shape(embedding)[:1], self.num_classes)
            embedding += self.class_embedding(tf.cast(condition, tf.int32))
        return embedding

    def conditioning_config(self):
        return {"embedding_dim": self.embedding_dim, "num_classes": self.num_classes, "time_scale": self.time_scale}


@_serializable
class MLPDenoiser(_Conditioning):
    """`(x [B, *event], t [B] float, condition [B] int32 or None) -> [B, *event]`.

    Each hidden layer is dense(h) + dense(embedding), then swish; the output layer
    starts at zero, so an untrained network predicts 0 (the mean of the noise).

    Args:
      event_shape: shape of one row (flattened inside).
      hidden_units: widths of the hidden layers.
      embedding_dim: width of the time (and class) embedding.
      num_classes: classes of a conditional network (plus the null class), or None.
      time_scale: multiplies t inside the sinusoidal embedding.
    """

    def __init__(self, event_shape, hidden_units=(256, 256, 256), embedding_dim=128, num_classes=None,
                 time_scale=1.0, **kwargs):
        super().__init__(embedding_dim, num_classes, time_scale, **kwargs)
        self.event_shape = [int(d) for d in event_shape]
        self.hidden_units = [int(u) for u in hidden_units]
        self.dense = [keras.layers.Dense(u, name=f"dense_{i}") for i, u in enumerate(self.hidden_units)]
        self.embedding_projections = [keras.layers.Dense(u, name=f"embedding_{i}")
                                      for i, u in enumerate(self.hidden_units)]
        self.out = keras.layers.Dense(math.prod(self.event_shape), kernel_initializer="zeros", name="out")

    def call(self, x, t, condition=None, training=False):
        embedding = self.embed(t, condition)
        h = tf.reshape(tf.cast(x, tf.float32), [-1, math.prod(self.event_shape)])
        for dense, projection in zip(self.dense, self.embedding_projections):
            h = tf.nn.swish(dense(h) + projection(embedding))
        return tf.reshape(self.out(h), [-1, *self.event_shape])

    def get_config(self):
        return {**super().get_config(), **self.conditioning_config(), "event_shape": self.event_shape,
                "hidden_units": self.hidden_units}


@_serializable
class ResidualBlock(keras.layers.Layer):
    """GroupNorm, swish, conv3x3, + dense(embedding) per channel, GroupNorm, swish,
    dropout, conv3x3 (zero-initialized), plus the input (1x1-projected if widths differ).

    Args:
      filters: output channels.
      groups: group-norm groups (must divide the channels it normalizes).
      dropout: dropout rate before the second convolution.
    """

    def __init__(self, filters, groups=8, dropout=0.0, **kwargs):
        super().__init__(**kwargs)
        self.filters = int(filters)
        self.groups = int(groups)
        self.dropout = float(dropout)
        self.norm_in = None  # built once the input width is known (groups must divide it)
        self.conv_in = keras.layers.Conv2D(self.filters, 3, padding="same", name="conv_in")
        self.embedding_projection = keras.layers.Dense(self.filters, name="embedding")
        self.norm_out = keras.layers.GroupNormalization(min(self.groups, self.filters), name="norm_out")
        self.drop = keras.layers.Dropout(self.dropout)
        self.conv_out = keras.layers.Conv2D(self.filters, 3, padding="same", kernel_initializer="zeros",
                                            name="conv_out")
        self.shortcut = None

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.norm_in = keras.layers.GroupNormalization(math.gcd(self.groups, channels), name="norm_in")
        if channels != self.filters:
            self.shortcut = keras.layers.Conv2D(self.filters, 1, name="shortcut")
        super().build(input_shape)

    def call(self, x, embedding, training=False):
        h = self.conv_in(tf.nn.swish(self.norm_in(x)))
        h += self.embedding_projection(tf.nn.swish(embedding))[:, None, None, :]
        h = self.conv_out(self.drop(tf.nn.swish(self.norm_out(h)), training=training))
        return h + (x if self.shortcut is None else self.shortcut(x))

    def get_config(self):
        return {**super().get_config(), "filters": self.filters, "groups": self.groups, "dropout": self.dropout}


@_serializable
class SpatialAttention(keras.layers.Layer):
    """Single-head self-attention over the H*W positions of a feature map, residual,
    after a group norm (the output projection starts at zero).

    Args:
      groups: group-norm groups.
    """

    def __init__(self, groups=8, **kwargs):
        super().__init__(**kwargs)
        self.groups = int(groups)

    def build(self, input_shape):
        channels = int(input_shape[-1])
        self.norm = keras.layers.GroupNormalization(math.gcd(self.groups, channels), name="norm")
        self.qkv = keras.layers.Dense(3 * channels, name="qkv")
        self.proj = keras.layers.Dense(channels, kernel_initializer="zeros", name="proj")
        super().build(input_shape)

    def call(self, x):
        shape = tf.shape(x)
        channels = x.shape[-1]
        # Positions spelled out, not -1, which cannot be inferred for an empty batch.
        q, k, v = tf.split(self.qkv(tf.reshape(self.norm(x), [shape[0], shape[1] * shape[2], channels])), 3, -1)
        weights = tf.nn.softmax(tf.matmul(q, k, transpose_b=True) / math.sqrt(channels), -1)
        return x + tf.reshape(self.proj(tf.matmul(weights, v)), shape)

    def get_config(self):
        return {**super().get_config(), "groups": self.groups}


@_serializable
class UNet(_Conditioning):
    """`(x [B, H, W, C], t [B] float, condition [B] int32 or None) -> [B, H, W, C]`.

    Level i has `filters * channel_multipliers[i]` channels and `blocks_per_level`
    residual blocks; between levels the side halves (average pooling) on the way down
    and doubles (nearest neighbour) on the way up, where each of the level's
    `blocks_per_level + 1` blocks also reads the matching down-path features
    (concatenated). H and W must be divisible by
    2^(levels - 1).

    Args:
      event_shape: [H, W, C].
      filters: channels of the first level.
      channel_multipliers: per level, multiplies `filters`.
      blocks_per_level: residual blocks per level on the way down (one more up).
      attention: self-attention after each block of the lowest level.
      groups: group-norm groups.
      dropout: dropout in the residual blocks.
      embedding_dim: width of the time (and class) embedding.
      num_classes: classes of a conditional network (plus the null class), or None.
      time_scale: multiplies t inside the sinusoidal embedding.
    """

    def __init__(self, event_shape, filters=32, channel_multipliers=(1, 2), blocks_per_level=1, attention=True,
                 groups=8, dropout=0.0, embedding_dim=128, num_classes=None, time_scale=1.0, **kwargs):
        super().__init__(embedding_dim, num_classes, time_scale, **kwargs)
        self.event_shape = [int(d) for d in event_shape]
        self.filters = int(filters)
        self.channel_multipliers = [int(m) for m in channel_multipliers]
        self.blocks_per_level = int(blocks_per_level)
        self.attention = bool(attention)
        self.groups = int(groups)
        self.dropout = float(dropout)
        levels = len(self.channel_multipliers)
        side = 2 ** (levels - 1)
        if len(self.event_shape) != 3 or self.event_shape[0] % side or self.event_shape[1] % side:
            raise ValueError(f"UNet with {levels} levels needs images [H, W, C] with H and W multiples of {side}, "
                             f"got event_shape {self.event_shape}")
        widths = [self.filters * m for m in self.channel_multipliers]

        def block(width, name):
            return ResidualBlock(width, self.groups, self.dropout, name=name)

        self.conv_in = keras.layers.Conv2D(self.filters, 3, padding="same", name="conv_in")
        self.down = [[block(w, f"down_{i}_{j}") for j in range(self.blocks_per_level)] for i, w in enumerate(widths)]
        self.up = [[block(w, f"up_{i}_{j}") for j in range(self.blocks_per_level + 1)] for i, w in enumerate(widths)]
        lowest = levels - 1
        self.attention_down = [SpatialAttention(self.groups, name=f"attention_down_{j}")
                               for j in range(self.blocks_per_level)] if self.attention else []
        self.attention_up = [SpatialAttention(self.groups, name=f"attention_up_{j}")
                             for j in range(self.blocks_per_level + 1)] if self.attention else []
        self.lowest = lowest
        self.norm_out = keras.layers.GroupNormalization(math.gcd(self.groups, self.filters), name="norm_out")
        self.conv_out = keras.layers.Conv2D(self.event_shape[-1], 3, padding="same", kernel_initializer="zeros",
                                            name="conv_out")

    def call(self, x, t, condition=None, training=False):
        embedding = self.embed(t, condition)
        h = self.conv_in(tf.cast(x, tf.float32))
        skips = [h]
        for i, blocks in enumerate(self.down):
            if i:
                h = tf.nn.avg_pool2d(h, 2, 2, "VALID")
                skips.append(h)
            for j, residual in enumerate(blocks):
                h = residual(h, embedding, training=training)
                if i == self.lowest and self.attention_down:
                    h = self.attention_down[j](h)
                skips.append(h)
        for i in reversed(range(len(self.up))):
            for j, residual in enumerate(self.up[i]):
                h = residual(tf.concat([h, skips.pop()], -1), embedding, training=training)
                if i == self.lowest and self.attention_up:
                    h = self.attention_up[j](h)
            if i:
                h = tf.repeat(tf.repeat(h, 2, axis=1), 2, axis=2)
        return self.conv_out(tf.nn.swish(self.norm_out(h)))

    def get_config(self):
        return {**super().get_config(), **self.conditioning_config(), "event_shape": self.event_shape,
                "filters": self.filters, "channel_multipliers": self.channel_multipliers,
                "blocks_per_level": self.blocks_per_level, "attention": self.attention, "groups": self.groups,
                "dropout": self.dropout}
