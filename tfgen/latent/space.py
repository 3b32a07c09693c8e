"""The latent-space tools, written once over an export's `encode` / `decode` /
`reconstruct` signatures (docs/architecture.md, "The SavedModel contract").

    space = LatentSpace(LocalCaller("saved_models/digits_realnvp"))  # or ServerCaller(...)
    strip = space.interpolate_inputs(x[0], x[1], steps=8, method="slerp")   # [8, *event]
    grid = space.apply_attribute(x[:3], space.attribute_vector(x, y == 1), [-1, 0, 1])
    pairs = space.reconstruct(x[:8])                                         # [8, *event]

Codes. For a stochastic encoder (a VAE) the tools use the posterior mean (the `encode`
signature's `mean` output) as an input's code, the usual choice for interpolations and
attribute vectors; `code="draw"` uses the seeded draw `z` instead. A deterministic
encoder (a flow) has one code, `z`.

Seeds. A model with `decode` but no `encode` (a decode-only model such as a GAN) still
interpolates between seeds: the code of seed s is the standard normal draw keyed by s,
as `tfgen.random.per_row_normal(s, latent_shape)` makes it. A flow samples from exactly
that draw, so a flow's seed interpolation starts and ends at its samples of the two
seeds (temperature 1); for a VAE it is a draw from its standard normal prior.

Interpolation between codes a and b at t in [0, 1]: linear, (1 - t) a + t b; spherical
(slerp, Shoemake 1985, suggested for Gaussian latents by White 2016), sin((1 - t) w) /
sin w a + sin(t w) / sin w b with w the angle between a and b (linear when w ~ 0).
"""

import numpy as np

from tfgen.contract import SIGNATURES
from tfgen.errors import UserError

METHODS = ("linear", "slerp")
#: Rows per signature call (a served model caps request sizes).
BATCH_SIZE = 256


def interpolate(a, b, steps, method="linear"):
    """`steps` codes from `a` (t = 0) to `b` (t = 1), evenly spaced in t: `[steps, *a.shape]`."""
    if method not in METHODS:
        raise UserError(f"unknown interpolation {method!r}; use one of {list(METHODS)}")
    if steps < 2:
        raise UserError(f"an interpolation needs at least 2 steps, got {steps}")
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    t = np.linspace(0.0, 1.0, steps).reshape([-1] + [1] * a.ndim)
    if method == "slerp":
        cosine = np.dot(a.ravel(), b.ravel()) / max(np.linalg.norm(a) * np.linalg.norm(b), 1e-12)
        angle = np.arccos(np.clip(cosine, -1.0, 1.0))
        if np.sin(angle) > 1e-6:
            return ((np.sin((1 - t) * angle) * a + np.sin(t * angle) * b) / np.sin(angle)).astype(np.float32)
    return ((1 - t) * a + t * b).astype(np.float32)


def prior_codes(seeds, latent_shape):
    """The code of each seed: a standard normal draw `[len(seeds), *latent_shape]` keyed by the seed."""
    from tfgen.backend import tf
    from tfgen.random import per_row_normal

    return per_row_normal(tf.constant(np.asarray(seeds, np.int64)), latent_shape).numpy()


class LatentSpace:
    """The latent space of one model, through a signature caller (`tfgen.latent.callers`).

    Raises:
      UserError: the model has no `decode` signature, or its latent shape disagrees with
        the one its tfgen.json records.
    """

    def __init__(self, caller):
        self.caller = caller
        signatures = caller.signatures
        if "decode" not in signatures:
            raise UserError(f"{caller.source} has no decode signature, so no latent space to explore "
                            f"(it has {sorted(signatures)})")
        decode = signatures["decode"]["inputs"]
        self.latent_shape = tuple(decode["z"][1][1:])
        self.event_shape = tuple(signatures["decode"]["outputs"]["x"][1][1:])
        if any(d < 0 for d in self.latent_shape + self.event_shape):
            raise UserError(f"{caller.source}: decode has unknown dims (z {list(self.latent_shape)}, "
                            f"x {list(self.event_shape)})")
        recorded = caller.recorded_latent_shape
        if recorded is not None and recorded != self.latent_shape:
            raise UserError(f"{caller.source}: tfgen.json records latent shape {list(recorded)}, the decode "
                            f"signature takes {list(self.latent_shape)}")
        self.conditional = "condition" in decode
        self.has_encode = "encode" in signatures
        self.stochastic = self.has_encode and "seed" in signatures["encode"]["inputs"]
        self.has_reconstruct = "reconstruct" in signatures

    # === Calls, in batches, with the inputs checked ===
    def _rows(self, name, inputs, output):
        count = len(next(iter(inputs.values())))
        parts = []
        for start in range(0, count, BATCH_SIZE):
            batch = {k: v[start:start + BATCH_SIZE] for k, v in inputs.items()}
            outputs = self.caller.call(name, batch)
            parts.append({k: outputs[k] for k in ([output] if isinstance(output, str) else output)})
        result = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
        for key, value in result.items():
            bad = np.flatnonzero(~np.isfinite(value.reshape(count, -1)).all(axis=1))
            if bad.size:
                raise UserError(f"{self.caller.source}: {name} returned non-finite {key} for rows "
                                f"{bad[:10].tolist()}")
        return result[output] if isinstance(output, str) else result

    def _condition(self, condition, count):
        if not self.conditional:
            if condition is not None:
                raise UserError(f"{self.caller.source} is unconditional: drop the condition")
            return {}
        if condition is None:
            raise UserError(f"{self.caller.source} is conditional: give a class (condition) for the rows")
        dtype = SIGNATURES["decode"].input("condition").dtype
        return {"condition": np.broadcast_to(np.asarray(condition, dtype).reshape(-1), [count]).copy()}

    def _checked(self, values, shape, what):
        values = np.asarray(values, np.float32)
        if values.shape[1:] != shape:
            raise UserError(f"{what} of shape {list(values.shape[1:])} per row, {self.caller.source} takes "
                            f"{list(shape)}")
        bad = np.flatnonzero(~np.isfinite(values.reshape(len(values), -1)).all(axis=1))
        if bad.size:
            raise UserError(f"{what}: non-finite values (NaN or Inf) in rows {bad[:10].tolist()}")
        return values

    def _encode_inputs(self, x, condition, seed):
        x = self._checked(x, self.event_shape, "examples")
        inputs = {"x": x, **self._condition(condition, len(x))}
        if self.stochastic:
            seed = np.arange(len(x)) if seed is None else seed
            inputs["seed"] = np.broadcast_to(np.asarray(seed, np.int64).reshape(-1), [len(x)]).copy()
        return inputs

    def _require_encode(self):
        if not self.has_encode:
            raise UserError(f"{self.caller.source} has no encode signature (a decode-only model): "
                            "interpolate between seeds instead")

    # === The tools ===
    def encode(self, x, condition=None, seed=None, code="mean"):
        """The codes of examples `[N, *event]`: the posterior mean of a stochastic encoder
        (or, with `code="draw"`, its draw keyed by `seed`, default 0 .. N-1), else z."""
        if code not in ("mean", "draw"):
            raise UserError(f"code must be 'mean' or 'draw', got {code!r}")
        self._require_encode()
        output = "mean" if self.stochastic and code == "mean" else "z"
        return self._rows("encode", self._encode_inputs(x, condition, seed), output)

    def decode(self, z, condition=None):
        """Examples `[N, *event]` of codes `[N, *latent]`."""
        z = self._checked(z, self.latent_shape, "codes")
        return self._rows("decode", {"z": z, **self._condition(condition, len(z))}, "x")

    def reconstruct(self, x, condition=None, seed=None, code="draw"):
        """decode(encode(x)): the `reconstruct` signature, or `encode` then `decode` for an
        export made before it existed. A stochastic encoder decodes its draw keyed by
        `seed` (default 0 .. N-1), or with `code="mean"` its posterior mean."""
        if self.stochastic and code == "mean":
            return self.decode(self.encode(x, condition, seed, code), condition)
        inputs = self._encode_inputs(x, condition, seed)
        if self.has_reconstruct:
            return self._rows("reconstruct", inputs, "x")
        self._require_encode()
        return self.decode(self._rows("encode", inputs, "z"), condition)

    def interpolate_inputs(self, x0, x1, steps=8, method="linear", condition=None, seed=None, code="mean"):
        """Decoded codes from `x0`'s to `x1`'s: `[steps, *event]` (`seed`: the two rows'
        seeds of a stochastic encoder's draws, default 0, 1)."""
        codes = self.encode(np.stack([x0, x1]), condition, seed, code)
        return self.decode(interpolate(codes[0], codes[1], steps, method), condition)

    def interpolate_seeds(self, seed0, seed1, steps=8, method="linear", condition=None):
        """Decoded codes from seed0's prior draw to seed1's (see the module doc): `[steps, *event]`."""
        codes = prior_codes([seed0, seed1], self.latent_shape)
        return self.decode(interpolate(codes[0], codes[1], steps, method), condition)

    def attribute_vector(self, x, has_attribute, condition=None, seed=None, code="mean"):
        """The mean code of the examples with the attribute minus that of those without
        (the "smile vector" of White 2016): `[*latent]`.

        Args:
          x: examples `[N, *event]`.
          has_attribute: bool `[N]`.
          condition: class of every row (or one for all) for a conditional model.
        """
        has_attribute = np.asarray(has_attribute, bool).reshape(-1)
        if len(has_attribute) != len(x):
            raise UserError(f"{len(x)} examples and {len(has_attribute)} attribute flags")
        for flag, what in ((True, "with"), (False, "without")):
            if not np.any(has_attribute == flag):
                raise UserError(f"no example {what} the attribute: the vector needs both groups")
        codes = self.encode(x, condition, seed, code).astype(np.float64)
        return (codes[has_attribute].mean(axis=0) - codes[~has_attribute].mean(axis=0)).astype(np.float32)

    def apply_attribute(self, x, vector, strengths, condition=None, seed=None, code="mean"):
        """Each example's code plus each strength times `vector`, decoded:
        `[len(x), len(strengths), *event]` (strength 0 is the reconstruction from the code)."""
        vector = self._checked(np.asarray(vector)[None], self.latent_shape, "attribute vector")[0]
        strengths = np.asarray(strengths, np.float32).reshape(-1)
        if not strengths.size or not np.all(np.isfinite(strengths)):
            raise UserError(f"strengths must be finite numbers, got {strengths.tolist()}")
        codes = self.encode(x, condition, seed, code)
        shifted = codes[:, None] + strengths.reshape([1, -1] + [1] * len(self.latent_shape)) * vector
        rows = len(codes) * len(strengths)
        condition = None if condition is None else np.repeat(
            np.broadcast_to(np.asarray(condition).reshape(-1), [len(codes)]), len(strengths))
        decoded = self.decode(shifted.reshape(rows, *self.latent_shape), condition)
        return decoded.reshape(len(codes), len(strengths), *self.event_shape)
