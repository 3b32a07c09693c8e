"""Load only what a SavedModel's signatures call.

`tf.saved_model.load` rebuilds every function of an export's library as a Python
FuncGraph (`function_def_to_graph`, under the GIL), the checkpointing functions TF
Serving's C++ restore needs among them: about half of the CPU the shipped models took to
load and warm up (docs/benchmarks.md, "Cold start"). A server needs none of it, only each
signature called with its flat inputs. So `load` registers the FunctionDefs the
signatures reach with the eager context (renamed, so that two exports may hold different
functions of one name), restores the variables they capture from the checkpoint, and
calls a signature by name with `Context.call_function`: the call TensorFlow's restored
functions make, with the same attributes, so the calling thread's
`function_call_options` pick the instantiation as before (`tfgen.serving.instantiation`).
Its answers are bit-identical to those through `tf.saved_model.load`
(tests/serving/test_loader.py).

That covers TF2 SavedModels whose signatures capture only variables and constants,
which is every tfgen export. Any other (a TF1 graph, lookup tables, assets, distributed
variables) is loaded with `tf.saved_model.load`, as every model is with
`tfgen serve --load_signatures_only=false`.
"""

import itertools
import logging
import os
import weakref

import tensorflow as tf
from tensorflow.core.protobuf import saved_model_pb2, trackable_object_graph_pb2
from tensorflow.python.eager import context

log = logging.getLogger("tfgen.serving")

SERVE_TAGS = ("serve",)  # the MetaGraphDef TF Serving loads
_load_ids = itertools.count(1)
_CHECKPOINT_GRAPH_KEY = "_CHECKPOINTABLE_OBJECT_GRAPH"
_VARIABLE_VALUE = "VARIABLE_VALUE"


class _Unsupported(Exception):
    """What keeps an export from loading signatures only (then: `tf.saved_model.load`)."""


def read_meta_graph(path):
    """The `serve`-tagged MetaGraphDef from saved_model.pb/.pbtxt (`path` may be a URL
    TensorFlow's file systems read, e.g. gs://)."""
    saved_model = saved_model_pb2.SavedModel()
    pb = os.path.join(path, "saved_model.pb")
    if tf.io.gfile.exists(pb):
        with tf.io.gfile.GFile(pb, "rb") as f:
            saved_model.ParseFromString(f.read())
    else:
        from google.protobuf import text_format

        with tf.io.gfile.GFile(os.path.join(path, "saved_model.pbtxt")) as f:
            text_format.Parse(f.read(), saved_model)
    for meta_graph in saved_model.meta_graphs:
        if set(meta_graph.meta_info_def.tags) == set(SERVE_TAGS):
            return meta_graph
    raise ValueError(f"no MetaGraphDef with tags {list(SERVE_TAGS)} in {path}")


def load(path, meta_graph, signatures_only=True):
    """An object whose `.signatures` maps each signature key to a callable
    (keyword tensors -> {output alias: tensor}) of the `meta_graph` read from `path`
    (`read_meta_graph`); the caller keeps the object alive."""
    if signatures_only:
        library = {f.signature.name: f for f in meta_graph.graph_def.library.function}
        try:
            plan = _plan(meta_graph, library)
        except _Unsupported as e:
            log.info("Loading %s with tf.saved_model.load: %s", path, e)
        else:
            return SignaturesOnly(path, meta_graph, library, plan)
    return tf.saved_model.load(path, tags=list(SERVE_TAGS))


def _plan(meta_graph, library):
    """{signature key: (function name, input aliases in call order, output aliases in
    result order, bound object node ids)}, or _Unsupported naming why not."""
    objects = meta_graph.object_graph_def
    if not objects.nodes:
        raise _Unsupported("no object graph (a TF1 SavedModel)")
    roots = {child.local_name: child.node_id for child in objects.nodes[0].children}
    if "signatures" not in roots:
        raise _Unsupported("no signatures in the object graph")
    plan = {}
    for child in objects.nodes[roots["signatures"]].children:
        key, node = child.local_name, objects.nodes[child.node_id]
        if (node.WhichOneof("kind") != "bare_concrete_function"
                or key not in meta_graph.signature_def):
            raise _Unsupported(f"signature {key!r} is not a plain concrete function")
        bare = node.bare_concrete_function
        name, signature_def = bare.concrete_function_name, meta_graph.signature_def[key]
        saved = objects.concrete_functions[name]
        inputs = list(bare.argument_keywords)
        # Restored functions pack their flat outputs as nest does a dict: sorted keys.
        if not saved.output_signature.HasField("dict_value"):
            raise _Unsupported(f"signature {key!r} does not return a dict")
        outputs = sorted(saved.output_signature.dict_value.fields)
        if set(inputs) != set(signature_def.inputs) or set(outputs) != set(signature_def.outputs):
            raise _Unsupported(f"signature {key!r}'s function and SignatureDef disagree")
        for node_id in saved.bound_inputs:
            bound = objects.nodes[node_id]
            kind = bound.WhichOneof("kind")
            if kind not in ("variable", "constant"):
                raise _Unsupported(f"signature {key!r} captures a {kind}")
            if kind == "variable" and bound.variable.experimental_distributed_variable_components:
                raise _Unsupported(f"signature {key!r} captures a distributed variable")
        function = library.get(name)
        if function is None:
            raise _Unsupported(f"signature {key!r}'s function {name} is not in the library")
        arguments = function.signature.input_arg
        if (len(arguments) != len(inputs) + len(saved.bound_inputs)
                or len(function.signature.output_arg) != len(outputs)
                or any(arg.type != signature_def.inputs[alias].dtype
                       for arg, alias in zip(arguments, inputs))):
            raise _Unsupported(f"signature {key!r}'s function does not take its inputs "
                               "and captures")
        plan[key] = (name, inputs, outputs, list(saved.bound_inputs))
    return plan


def _called_functions(library, names):
    """The names of `names`' functions and every function they call, transitively."""
    reached, stack = set(), list(names)
    while stack:
        name = stack.pop()
        if name in reached or name not in library:
            continue
        reached.add(name)
        for node in library[name].node_def:
            stack.append(node.op)
            stack.extend(reference.name for reference in _function_references(node))
    return reached


def _function_references(node):
    """The NameAttrList protos by which a node's attributes name functions (`f`, `body`,
    `branches`, ...), nested ones included."""
    values = list(node.attr.values())
    while values:
        value = values.pop()
        for reference in ([value.func] if value.HasField("func") else []) + list(value.list.func):
            yield reference
            values.extend(reference.attr.values())


def _rename_references(function, renamed):
    for node in function.node_def:
        node.op = renamed.get(node.op, node.op)
        for reference in _function_references(node):
            reference.name = renamed.get(reference.name, reference.name)


def _checkpoint_keys(objects, checkpoint_graph, node_ids):
    """{object node id: checkpoint key of its value} for the variables `node_ids`, found
    by walking both object graphs from the root along the same child names (as
    checkpoint restore matches them)."""
    wanted, keys = set(node_ids), {}
    stack, seen = [(0, 0)], set()
    while stack and len(keys) < len(wanted):
        saved_id, checkpoint_id = stack.pop()
        if saved_id in seen:
            continue
        seen.add(saved_id)
        checkpoint_node = checkpoint_graph.nodes[checkpoint_id]
        if saved_id in wanted:
            for attribute in checkpoint_node.attributes:
                if attribute.name == _VARIABLE_VALUE:
                    keys[saved_id] = attribute.checkpoint_key
        checkpoint_children = {c.local_name: c.node_id for c in checkpoint_node.children}
        for child in objects.nodes[saved_id].children:
            if child.local_name in checkpoint_children:
                stack.append((child.node_id, checkpoint_children[child.local_name]))
    missing = wanted - set(keys)
    if missing:
        names = sorted(objects.nodes[i].variable.name for i in missing)
        raise ValueError(f"the checkpoint holds no value for variables {names[:5]}")
    return keys


def _remove_functions(names):
    ctx = context.context()
    for name in names:
        if ctx.has_function(name):
            ctx.remove_function(name)


class SignaturesOnly:
    """The signatures of one export, their functions registered under load-unique names.

    The functions (`function_names`) are removed from the eager context when this object
    is collected; every signature callable holds a reference to it.
    """

    def __init__(self, path, meta_graph, library, plan):
        objects = meta_graph.object_graph_def
        bound = sorted({node_id for *_, node_ids in plan.values() for node_id in node_ids})
        captures = self._restore_variables(path, objects, bound)
        captures.update(self._constants(meta_graph, bound))

        called = _called_functions(library, [name for name, *_ in plan.values()])
        suffix = f"_tfgen_load{next(_load_ids)}"
        renamed = {name: name + suffix for name in called}
        ctx = context.context()
        ctx.ensure_initialized()
        self.function_names = []
        # Not at exit: a daemon thread may still be calling them, and the process is ending.
        weakref.finalize(self, _remove_functions, self.function_names).atexit = False
        for name in called:
            function = type(library[name])()
            function.CopyFrom(library[name])  # the caller's MetaGraphDef stays as read
            function.signature.name = renamed[name]
            _rename_references(function, renamed)
            ctx.add_function_def(function)
            self.function_names.append(function.signature.name)

        self.signatures = {
            key: SignatureCall(self, renamed[name].encode(), inputs, outputs,
                               [captures[node_id] for node_id in node_ids])
            for key, (name, inputs, outputs, node_ids) in plan.items()
        }

    @staticmethod
    def _constants(meta_graph, node_ids):
        """{node id: tensor} for the constants among `node_ids`, from their Const nodes."""
        objects = meta_graph.object_graph_def
        operations = {i: objects.nodes[i].constant.operation for i in node_ids
                      if objects.nodes[i].WhichOneof("kind") == "constant"}
        if not operations:
            return {}
        wanted = set(operations.values())
        values = {node.name: node.attr["value"].tensor for node in meta_graph.graph_def.node
                  if node.name in wanted and node.op == "Const"}
        missing = wanted - set(values)
        if missing:
            raise ValueError(f"constants {sorted(missing)[:5]} are not in the graph")
        return {i: tf.constant(tf.make_ndarray(values[op])) for i, op in operations.items()}

    @staticmethod
    def _restore_variables(path, objects, node_ids):
        """{node id: tf.Variable holding its checkpointed value} for the variables."""
        variable_ids = [i for i in node_ids if objects.nodes[i].WhichOneof("kind") == "variable"]
        if not variable_ids:
            return {}
        prefix = os.path.join(path, "variables", "variables")
        # The prefix itself: load_checkpoint's directory test is true of any ram:// path.
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)
        checkpoint_graph = trackable_object_graph_pb2.TrackableObjectGraph.FromString(
            reader.get_tensor(_CHECKPOINT_GRAPH_KEY))
        keys = _checkpoint_keys(objects, checkpoint_graph, variable_ids)
        saved = [objects.nodes[i].variable for i in variable_ids]
        values = tf.raw_ops.RestoreV2(
            prefix=prefix, tensor_names=[keys[i] for i in variable_ids],
            shape_and_slices=[""] * len(variable_ids), dtypes=[tf.as_dtype(v.dtype) for v in saved])
        variables = {}
        for node_id, variable, value in zip(variable_ids, saved, values):
            expected = tf.TensorShape(variable.shape)
            if not expected.is_compatible_with(value.shape):
                raise ValueError(f"variable {variable.name} is {value.shape} in the checkpoint, "
                                 f"{expected} in the graph")
            variables[node_id] = tf.Variable(value, trainable=False)
        return variables


class SignatureCall:
    """One signature function, called by name like TensorFlow's restored functions."""

    def __init__(self, owner, function_name, inputs, outputs, captures):
        self._owner = owner  # keeps the functions registered
        self._variables = captures  # a handle alone does not keep its variable alive
        self._function_name = function_name
        self._inputs = inputs
        self._outputs = outputs
        self._captured = [c.handle if isinstance(c, tf.Variable) else c for c in captures]

    def __call__(self, **feeds):
        try:
            if len(feeds) != len(self._inputs):
                raise KeyError
            flat = [feeds[alias] for alias in self._inputs] + self._captured
        except KeyError:
            raise TypeError(f"expected inputs {self._inputs}, got {sorted(feeds)}") from None
        results = context.context().call_function(self._function_name, flat, len(self._outputs))
        return dict(zip(self._outputs, results))
