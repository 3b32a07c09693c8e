"""Two instantiations of a signature function: a quick one to serve soon, an optimized one.

A signature function's first call instantiates it: TensorFlow optimizes its graph with
Grappler and creates its kernels, and that is most of what a version's warmup costs
(docs/benchmarks.md, "Cold start"). With Grappler's meta-optimizer off, the first call
costs 2.4-3x less CPU, but some graphs then serve slower (the conditional VAE's 64-row
`log_prob` by 27%, docs/benchmarks.md). So a version warms up on the QUICK instantiation
and becomes AVAILABLE; once the poll pass's loads are done, `ModelManager` replays its
warmup on the OPTIMIZED one, TensorFlow's default, in a background thread and switches
its calls to it: from then on it serves exactly what a server without this step serves.
The two instantiations agree to float32 rounding, not bit for bit (Grappler reorders and
fuses arithmetic).

TensorFlow keys a function's instantiation by the attributes of its call, among them the
`config_proto` of the calling thread's `context.function_call_options`
(`context.Context.call_function`), so both instantiations coexist and a call picks one
by setting the thread's options around it.
"""

import functools

from tensorflow.core.protobuf import config_pb2
from tensorflow.python.eager import context


def call_options(optimize):
    """FunctionCallOptions: the process default's with Grappler on (`optimize`) or off."""
    config = config_pb2.ConfigProto.FromString(
        context.context().function_call_options.config_proto_serialized
    )
    if not optimize:
        config.graph_options.rewrite_options.disable_meta_optimizer = True
    return context.FunctionCallOptions(config_proto=config)


class SignatureFunction:
    """A signature function called under one instantiation's options, switchable.

    Called like the function it wraps (keyword tensors), from any thread.
    """

    def __init__(self, function, options):
        self._function = function
        self.options = options

    def __call__(self, **feeds):
        return self.call_with(self.options, feeds)

    def call_with(self, options, feeds):
        ctx = context.context()
        previous = ctx.function_call_options  # per thread
        ctx.function_call_options = options
        try:
            return self._function(**feeds)
        finally:
            ctx.function_call_options = previous


@functools.lru_cache(maxsize=None)
def quick_and_optimized():
    """The (quick, optimized) FunctionCallOptions every servable of the process uses."""
    return call_options(False), call_options(True)
