"""Optimizers and learning-rate schedules from resolved optimizer settings
(`TrainingConfig.optimizer_settings(name)`, one per name in the model's `optimizer_names`)."""

from tfgen.backend import keras, tf
from tfgen.errors import UserError


class LinearWarmup(keras.optimizers.schedules.LearningRateSchedule):
    """Linear warm-up to `peak`, then `after` (a schedule or constant) from step 0.

        lr(t) = peak * (t + 1) / warmup_steps    for t < warmup_steps
        lr(t) = after(t - warmup_steps)          otherwise

    Args:
      peak: learning rate at the end of warm-up.
      warmup_steps: steps of the warm-up (> 0).
      after: the schedule that takes over (a `LearningRateSchedule` or a float).
    """

    def __init__(self, peak, warmup_steps, after):
        self.peak = float(peak)
        self.warmup_steps = int(warmup_steps)
        self.after = after

    def __call__(self, step):
        step = tf.cast(step, tf.float32)
        warm = self.peak * (step + 1.0) / float(self.warmup_steps)
        rest = step - float(self.warmup_steps)
        after = self.after(rest) if callable(self.after) else tf.constant(self.after, tf.float32)
        return tf.where(step < self.warmup_steps, warm, after)

    def get_config(self):
        after = self.after
        if isinstance(after, keras.optimizers.schedules.LearningRateSchedule):
            after = keras.optimizers.schedules.serialize(after)
        return {"peak": self.peak, "warmup_steps": self.warmup_steps, "after": after}


@keras.saving.register_keras_serializable(package="tfgen")
class Adam(keras.optimizers.Adam):
    """Keras' Adam, with each large variable's dense update in one fused kernel.

    Keras applies Adam to a variable as a dozen separate ops (two moment updates, a
    square root, the step), each a pass over the variable; TensorFlow's
    `ResourceApplyAdam` kernel makes one pass. On a CPU the fused kernel is faster from
    about 32k elements a variable (level at 32,768, 1.65x at 65,536, 3.2x at 262,144)
    and slower below it, where its fixed cost dominates (0.73x at 1,024:
    `bench/adam_update.py`, docs/benchmarks.md), so smaller variables keep Keras' ops.
    The maths is Keras' (`adaptive_epsilon=False`: epsilon added to sqrt(v)); the
    rounding order of the moment updates differs, so a run is exact against itself, not
    against Keras' Adam bit for bit. Sparse gradients, `amsgrad` and `adaptive_epsilon`
    take Keras' path. Slots and checkpoints are Keras' Adam's.

    Args:
      fused_min_elements: variables of at least this many elements use the fused kernel
        (0: all; None: none).
      **kwargs: Keras' Adam's.
    """

    def __init__(self, fused_min_elements=32768, **kwargs):
        super().__init__(**kwargs)
        self.fused_min_elements = fused_min_elements

    def update_step(self, gradient, variable):
        elements = variable.shape.num_elements()
        if (self.fused_min_elements is None or elements is None or elements < self.fused_min_elements
                or self.amsgrad or getattr(self, "adaptive_epsilon", False)
                or isinstance(gradient, tf.IndexedSlices)):
            return super().update_step(gradient, variable)
        dtype = variable.dtype
        local_step = tf.cast(self.iterations + 1, dtype)
        beta_1, beta_2 = tf.cast(self.beta_1, dtype), tf.cast(self.beta_2, dtype)
        index = self._index_dict[self._var_key(variable)]
        return tf.raw_ops.ResourceApplyAdam(
            var=variable.handle, m=self._momentums[index].handle, v=self._velocities[index].handle,
            beta1_power=tf.pow(beta_1, local_step), beta2_power=tf.pow(beta_2, local_step),
            lr=tf.cast(self.learning_rate, dtype), beta1=beta_1, beta2=beta_2,
            epsilon=tf.cast(self.epsilon, dtype), grad=gradient)

    def get_config(self):
        return {**super().get_config(), "fused_min_elements": self.fused_min_elements}


def build_schedule(settings, total_steps):
    """The learning rate (a float or schedule) of one optimizer.

    Args:
      settings: its resolved `OptimizerConfig`.
      total_steps: optimizer steps in the whole run (the default decay length).
    """
    s, lr = settings.schedule, settings.learning_rate
    decay_steps = s.decay_steps or max(1, total_steps - s.warmup_steps)
    if s.name == "cosine":
        after = keras.optimizers.schedules.CosineDecay(lr, decay_steps, alpha=s.alpha)
    elif s.name == "exponential":
        after = keras.optimizers.schedules.ExponentialDecay(lr, decay_steps, s.decay_rate)
    else:
        after = lr
    return LinearWarmup(lr, s.warmup_steps, after) if s.warmup_steps else after


def build_optimizer(settings, total_steps):
    """The Keras optimizer of resolved `OptimizerConfig` settings (create it inside
    `strategy.scope()`)."""
    t = settings
    common = dict(
        learning_rate=build_schedule(t, total_steps), clipnorm=t.clipnorm, global_clipnorm=t.global_clipnorm
    )
    adam_moments = dict(beta_1=t.beta_1, beta_2=t.beta_2, epsilon=t.epsilon)
    if t.optimizer == "adam":
        return Adam(**adam_moments, **common)
    if t.optimizer == "adamw":
        decay = {} if t.weight_decay is None else {"weight_decay": t.weight_decay}
        return keras.optimizers.AdamW(**adam_moments, **decay, **common)
    if t.optimizer == "adamax":
        return keras.optimizers.Adamax(**adam_moments, **common)
    if t.optimizer == "nadam":
        return keras.optimizers.Nadam(**adam_moments, **common)
    if t.optimizer == "sgd":
        return keras.optimizers.SGD(momentum=t.momentum, **common)
    if t.optimizer == "rmsprop":
        return keras.optimizers.RMSprop(momentum=t.momentum, epsilon=t.epsilon, **common)
    raise UserError(f"unknown optimizer {t.optimizer!r}")
