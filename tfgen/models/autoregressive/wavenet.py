"""WaveNet (van den Oord et al. 2016, arXiv:1609.03499) with Fast WaveNet's per-layer
queues for generation (Paine et al. 2016, arXiv:1611.09482).

Audio is a sequence of mu-law levels (`tfgen.data.audio`), modelled one sample at a time:

    log p(x | y) = sum_t log Categorical(x_t; softmax(f(x_<t, y)_t))

with `f` a stack of dilated causal convolutions (`tfgen.layers.CausalConv1D`, dilations
1, 2, 4, ... per stack), gated units `tanh(W_f * h + V_f y) . sigmoid(W_g * h + V_g y)`,
residual and skip connections, and `relu -> 1x1 -> relu -> 1x1` on the summed skips
giving one softmax over the levels per step. `y` is a global condition (the speaker or
class id). The input is the sequence shifted right by one step behind a learned start
token, so output t sees x_<t only; `log_prob` is exact on the levels.

Sampling. `sample_naive` runs the whole network over the sequence once per new sample
(O(T) passes of O(T) each). `sample` keeps, for each layer, a queue of its past inputs
(a `tf.TensorArray`) and computes one step of every layer from the `kernel_size` taps it
reads: O(layers) work per sample instead of O(receptive field). Both are `tf.while_loop`s
of core ops drawing from the same per-row uniforms, so the same seed gives the same
audio, and `sample`'s `length` (default: the training example length, at most
`max_length`) is checked inside the graph: a longer request is an INVALID_ARGUMENT
naming the cap.
"""

from tfgen.backend import keras, tf
from tfgen.contract import LogProbKind
from tfgen.distributions import UNIFORMS_PER_DRAW, categorical, draw_on_levels
from tfgen.errors import UserError
from tfgen.layers import CausalConv1D, ResidualSkip, gated_activation
from tfgen.models.base import register
from tfgen.models.likelihood import LikelihoodModel
from tfgen.random import per_row_uniform
from tfgen.serialization import attribute_config

_HYPERPARAMETERS = ("residual_channels", "skip_channels", "kernel_size", "layers_per_stack", "num_stacks",
                    "condition_dim", "max_length")
#: `max_length` default: this many seconds at the data's sample rate.
DEFAULT_MAX_SECONDS = 10


@register
class WaveNet(LikelihoodModel):
    """WaveNet on mu-law audio levels, optionally conditioned on a class (voice) id.

    Args:
      data_spec: an audio `DataSpec` of event shape `[T, 1]` with `levels` (and
        `num_classes` to condition, `sample_rate` for WAV files).
      residual_channels: width of the residual stream.
      skip_channels: width of the skip path and the output network.
      kernel_size: taps of each dilated convolution.
      layers_per_stack: layers of dilation 1, 2, ..., 2**(layers_per_stack - 1).
      num_stacks: repeats of that stack.
      condition_dim: size of the class embedding (conditional models only).
      max_length: the cap on `sample`'s `length`; default DEFAULT_MAX_SECONDS seconds
        at the sample rate (16 training examples without one).
      **kwargs: passed to `keras.Model`.

    Example:

        spec = {"event_shape": [4000, 1], "kind": "audio", "levels": 256,
                "sample_rate": 8000, "num_classes": 4}
        model = WaveNet(spec, layers_per_stack=10)
        audio = model.sample(tf.constant([0, 1], tf.int64), condition=tf.constant([2, 3]),
                             length=16000)          # [2, 16000, 1] levels, 2 s
    """

    family = "autoregressive"
    log_prob_kind = LogProbKind.EXACT
    #: audio of any length in the signatures; `sample` takes `length` (tfgen.contract).
    variable_length = True

    def __init__(self, data_spec, residual_channels=32, skip_channels=64, kernel_size=2, layers_per_stack=10,
                 num_stacks=1, condition_dim=16, max_length=None, **kwargs):
        super().__init__(data_spec, **kwargs)
        spec = self.data_spec
        if spec.kind != "audio" or len(spec.event_shape) != 2 or spec.event_shape[1] != 1 or not spec.is_discrete:
            raise UserError(f"WaveNet models mono audio [T, 1] with levels (mu-law), got {spec.kind} data of "
                            f"shape {spec.event_shape} with levels={spec.levels}")
        self.residual_channels, self.skip_channels = int(residual_channels), int(skip_channels)
        self.kernel_size, self.layers_per_stack = int(kernel_size), int(layers_per_stack)
        self.num_stacks, self.condition_dim = int(num_stacks), int(condition_dim)
        if min(self.residual_channels, self.skip_channels, self.layers_per_stack, self.num_stacks) < 1 \
                or self.kernel_size < 2:
            raise UserError("WaveNet needs positive channels, layers and stacks and kernel_size >= 2")
        length = spec.event_shape[0]
        if max_length is None:
            max_length = DEFAULT_MAX_SECONDS * spec.sample_rate if spec.sample_rate else 16 * length
        self.max_length = int(max_length)
        if self.max_length < length:
            raise UserError(f"max_length {self.max_length} is below the example length {length}")
        self.dilations = [2 ** i for _ in range(self.num_stacks) for i in range(self.layers_per_stack)]
        levels = spec.levels

        self._traced_sample = None  # sample's tf.function, made on the first eager call

        # === Layers ===
        # Index `levels` is the start token before the first sample.
        self.input_embedding = keras.layers.Embedding(levels + 1, self.residual_channels, name="input_embedding")
        self.convolutions = [CausalConv1D(2 * self.residual_channels, self.kernel_size, dilation_rate=d,
                                          name=f"dilated_{i}") for i, d in enumerate(self.dilations)]
        last = len(self.dilations) - 1
        self.blocks = [ResidualSkip(0 if i == last else self.residual_channels, self.skip_channels,
                                    name=f"residual_skip_{i}") for i in range(len(self.dilations))]
        self.head = [keras.layers.Dense(self.skip_channels, name="head_hidden"),
                     keras.layers.Dense(levels, name="head_out")]
        if spec.conditional:
            self.embedding = keras.layers.Embedding(spec.num_classes, self.condition_dim, name="class_embedding")
            self.condition_projection = [keras.layers.Dense(2 * self.residual_channels, use_bias=False,
                                                            name=f"condition_{i}")
                                         for i in range(len(self.dilations))]

    @property
    def receptive_field(self):
        """Past samples (and the present input) one output depends on."""
        return sum((self.kernel_size - 1) * d for d in self.dilations) + 1

    # === The network ===
    def _condition_biases(self, condition):
        """Per layer, `[B, 2R]` class biases of the gates (0 if unconditional)."""
        if not self.data_spec.conditional:
            return [0.0] * len(self.dilations)
        embedded = self.embedding(tf.cast(condition, tf.int32))
        return [projection(embedded) for projection in self.condition_projection]

    def _output(self, skips):
        return self.head[1](tf.nn.relu(self.head[0](tf.nn.relu(skips))))

    def logits(self, x, condition=None):
        """`[B, T, 1]` levels -> `[B, T, levels]`: step t's logits given x_<t."""
        codes = tf.cast(tf.convert_to_tensor(x, tf.float32)[..., 0], tf.int32)
        start = tf.fill(tf.shape(codes[:, :1]), self.data_spec.levels)
        h = self.input_embedding(tf.concat([start, codes[:, :-1]], axis=1))
        skips = 0.0
        for convolution, block, bias in zip(self.convolutions, self.blocks, self._condition_biases(condition)):
            if not isinstance(bias, float):
                bias = bias[:, None, :]
            h, skip = block(h, gated_activation(convolution(h) + bias))
            skips += skip
        return self._output(skips)

    # === Contract ===
    def log_prob(self, x, condition=None):
        x = tf.convert_to_tensor(x, tf.float32)
        return categorical(self.logits(x, condition)[:, :, None, :], event_ndims=2).log_prob(x)

    def _sampling_inputs(self, seed, temperature, length):
        """Seeds, per-row temperatures, the checked length of this batch and its uniforms."""
        seed = tf.convert_to_tensor(seed, tf.int64)
        temperature = tf.broadcast_to(tf.convert_to_tensor(temperature, tf.float32), tf.shape(seed))
        if length is None:
            length = tf.constant(self.data_spec.event_shape[0])
        else:
            # One length per row as the signature takes it; the batch's longest request
            # (0: the example length) sets every row's, so rows are never cut short.
            length = tf.reduce_max(tf.cast(length, tf.int32))
            length = tf.where(length > 0, length, self.data_spec.event_shape[0])
        check = tf.debugging.assert_less_equal(
            length, self.max_length,
            message=f"length: at most {self.max_length} samples (max_length, the cap of this model) can be "
                    "sampled per request; asked for")
        with tf.control_dependencies([check]):
            length = tf.identity(length)
        uniforms = per_row_uniform(seed, [length, UNIFORMS_PER_DRAW])
        return seed, temperature, length, uniforms

    def _draw(self, logits, uniforms, temperature):
        return draw_on_levels("categorical", logits, self.data_spec.levels, uniforms, temperature)

    def sample_naive(self, seed, temperature=1.0, condition=None, length=None):
        """Samples by running the whole network over the sequence once per new sample."""
        seed, temperature, length, uniforms = self._sampling_inputs(seed, temperature, length)

        def step(t, x):
            logits = tf.gather(self.logits(x, condition), t, axis=1)
            value = self._draw(logits, tf.gather(uniforms, t, axis=1), temperature)
            return t + 1, x + tf.one_hot(t, length)[None, :, None] * value[:, None, None]

        x = tf.zeros(tf.stack([tf.shape(seed)[0], length, 1]))
        _, x = tf.while_loop(lambda t, _: t < length, step, (tf.constant(0), x))
        return x

    def sample(self, seed, temperature=1.0, condition=None, length=None):
        """One sample per int64 seed, `length` steps (default: the example length; at
        most `max_length`), with per-layer queues: each step reads `kernel_size` taps per
        layer. Draws exactly what `sample_naive` draws for the same seeds, up to float
        rounding of ties."""
        if not self.head[-1].built:  # the cached steps call the layers' weights directly
            self.logits(tf.zeros([1, 2, 1]), None if condition is None else condition[:1])
        if tf.executing_eagerly():  # a Python loop of thousands of steps would crawl
            if self._traced_sample is None:
                self._traced_sample = tf.function(self._cached_sample, autograph=False)
            return self._traced_sample(seed, temperature, condition, length)
        return self._cached_sample(seed, temperature, condition, length)

    def _cached_sample(self, seed, temperature=1.0, condition=None, length=None):
        seed, temperature, length, uniforms = self._sampling_inputs(seed, temperature, length)
        biases = self._condition_biases(condition)
        pads = [(self.kernel_size - 1) * d for d in self.dilations]
        zeros = tf.zeros_like(temperature)[:, None] + tf.zeros([1, self.residual_channels])

        def queue(pad):
            """Layer inputs over time, the `pad` zero steps before the start first."""
            array = tf.TensorArray(tf.float32, size=pad + length, element_shape=zeros.shape,
                                   clear_after_read=False)
            return array.scatter(tf.range(pad), tf.tile(zeros[None], [pad, 1, 1]))

        def step(t, previous, queues, out):
            h = self.input_embedding(previous)
            skips, new_queues = 0.0, []
            for convolution, block, bias, d, pad, q in zip(self.convolutions, self.blocks, biases, self.dilations,
                                                            pads, queues):
                past = [q.read(pad + t - (self.kernel_size - 1 - i) * d) for i in range(self.kernel_size - 1)]
                new_queues.append(q.write(pad + t, h))
                h, skip = block(h, gated_activation(convolution.call_step(tf.stack(past + [h], axis=1)) + bias))
                skips += skip
            value = self._draw(self._output(skips), tf.gather(uniforms, t, axis=1), temperature)
            return t + 1, tf.cast(value, tf.int32), new_queues, out.write(t, value)

        start = (tf.constant(0), tf.fill(tf.shape(seed), self.data_spec.levels), [queue(p) for p in pads],
                 tf.TensorArray(tf.float32, size=length, element_shape=temperature.shape))
        _, _, _, out = tf.while_loop(lambda t, *_: t < length, step, start)
        return tf.transpose(out.stack())[:, :, None]

    # === Config ===
    def get_config(self):
        return {**super().get_config(), **attribute_config(self, _HYPERPARAMETERS)}
