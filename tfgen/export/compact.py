"""Shrinks a written saved_model.pb without changing what any loader computes.

Most of a tfgen graph's bytes are names, not operations: TFP's nested name scopes give
each node a path of a few hundred characters (`chain_of_.../forward/level_0/forward/
.../RationalQuadraticSpline/forward/add_3`), written again in every input that reads it,
and variables created inside those scopes carry the same paths into every function that
captures them. None of these names is part of the contract:

- the nodes and input arguments of a `FunctionDef` are private to it (callers pass
  arguments by position; loaders take keyword names from the object graph and the
  arguments' `_user_specified_name`, which is kept);
- the `VarHandleOp` nodes of the MetaGraph are reached only through the functions the
  saver and the signatures call, and keep a unique `shared_name`;

so `compact_saved_model` renames them to short unique names (`n1f`, `a3`, `v2`) and
merges identical constants within a function. (Saved custom gradients would name
forward-function tensors, so exports leave them out: `SaveOptions(
experimental_custom_gradients=False)`.) Signature names, tensor names the
SignatureDefs and the saver name, function names, checkpoint keys and the object graph
(variable names as `tf.saved_model.load` restores them) are left as they are. The
numbers are in docs/benchmarks.md ("SavedModel size"); `tfgen check` runs every loader
on the result.
"""

import os

_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def compact_saved_model(path):
    """Rewrites `path/saved_model.pb` (and its fingerprint) in place; returns (before, after) bytes."""
    from tensorflow.core.protobuf import saved_model_pb2
    from tensorflow.python.saved_model import fingerprinting_utils

    pb = os.path.join(path, "saved_model.pb")
    with open(pb, "rb") as f:
        data = f.read()
    saved_model = saved_model_pb2.SavedModel.FromString(data)
    for meta_graph in saved_model.meta_graphs:
        if meta_graph.graph_def.library.registered_gradients:
            # A saved custom gradient finds forward-function tensors by their names.
            raise ValueError(f"{path} holds custom gradients, which name the tensors this would rename: "
                             "save with SaveOptions(experimental_custom_gradients=False)")
    compact_meta_graphs(saved_model)
    compacted = saved_model.SerializeToString(deterministic=True)
    with open(pb, "wb") as f:
        f.write(compacted)
    # The fingerprint hashes saved_model.pb: write it again for the new bytes.
    fingerprinting_utils.write_fingerprint(path)
    return len(data), len(compacted)


def compact_meta_graphs(saved_model, passes=None):
    """Applies `passes` (names from `PASSES`, in its order; default all) to every
    MetaGraph of the `SavedModel` proto, in place."""
    for meta_graph in saved_model.meta_graphs:
        for name, apply in PASSES.items():
            if passes is None or name in passes:
                apply(meta_graph)


def _merge_constants_pass(meta_graph):
    for function in meta_graph.graph_def.library.function:
        _merge_constants(function)


def _rename_functions_pass(meta_graph):
    for function in meta_graph.graph_def.library.function:
        _rename_function(function)


def _short(prefix, index):
    digits = ""
    while True:
        index, digit = divmod(index, len(_DIGITS))
        digits = _DIGITS[digit] + digits
        if not index:
            return prefix + digits


def _rewrite_references(nodes, renamed):
    """Points every input (`node:output:i`, `^node`, `arg`) and colocation (`loc:@node`)
    of `nodes` at the new names; returns the function that maps one reference."""
    def reference(text):
        if text.startswith("^"):
            return "^" + renamed.get(text[1:], text[1:])
        head, colon, tail = text.partition(":")
        return renamed.get(head, head) + colon + tail

    for node in nodes:
        inputs = [reference(i) for i in node.input]
        del node.input[:]
        node.input.extend(inputs)
        if "_class" in node.attr:
            groups = [g.decode() for g in node.attr["_class"].list.s]
            groups = [("loc:@" + renamed.get(g[5:], g[5:])) if g.startswith("loc:@") else g for g in groups]
            del node.attr["_class"].list.s[:]
            node.attr["_class"].list.s.extend(g.encode() for g in groups)
    return reference


def _rewrite_function_references(function, renamed):
    """The references of a FunctionDef's nodes, outputs and control outputs."""
    reference = _rewrite_references(function.node_def, renamed)
    for key in list(function.ret):
        function.ret[key] = reference(function.ret[key])
    for key in list(function.control_ret):
        function.control_ret[key] = renamed.get(function.control_ret[key], function.control_ret[key])


def _rename_function(function):
    """Short names for a FunctionDef's nodes (`n…`) and input arguments (`a…`)."""
    renamed = {}
    for i, arg in enumerate(function.signature.input_arg):
        renamed[arg.name] = arg.name = _short("a", i)
    for i, node in enumerate(function.node_def):
        renamed[node.name] = node.name = _short("n", i)
    _rewrite_function_references(function, renamed)


def _merge_constants(function):
    """Keeps one of each set of identical `Const` nodes (same attributes, no inputs):
    TFP builds the same small shape and index constants hundreds of times."""
    first, renamed, kept = {}, {}, []
    for node in function.node_def:
        if node.op == "Const" and not node.input:
            key = (node.device, tuple(sorted((k, v.SerializeToString(deterministic=True))
                                             for k, v in node.attr.items())))
            if key in first:
                renamed[node.name] = first[key]
                continue
            first[key] = node.name
        kept.append(node)
    if not renamed:
        return
    del function.node_def[:]
    function.node_def.extend(kept)
    _rewrite_function_references(function, renamed)


def _rename_variable_handles(meta_graph):
    """Short names (`v…`) for the MetaGraph's variable handles and their read ops."""
    graph = meta_graph.graph_def
    renamed = {}
    for i, node in enumerate(n for n in graph.node if n.op == "VarHandleOp"):
        new = _short("v", i)
        renamed[node.name] = new
        node.attr["shared_name"].s = new.encode()
        if "debug_name" in node.attr:
            node.attr["debug_name"].s = new.encode()
    for node in graph.node:
        if node.op == "ReadVariableOp" and node.input and node.input[0] in renamed:
            renamed[node.name] = renamed[node.input[0]] + "/Read"
    referenced = _names_referenced_from_outside(meta_graph)
    clash = sorted(referenced & set(renamed))
    if clash:
        raise AssertionError(f"variable handle nodes {clash} are named by the SignatureDefs or saver")
    for node in graph.node:
        node.name = renamed.get(node.name, node.name)
    _rewrite_references(graph.node, renamed)


def _names_referenced_from_outside(meta_graph):
    """Node names the SignatureDefs, the saver and the collections refer to."""
    names = set()
    for signature in meta_graph.signature_def.values():
        for info in [*signature.inputs.values(), *signature.outputs.values()]:
            names.add(info.name.split(":")[0])
    saver = meta_graph.saver_def
    for tensor in (saver.filename_tensor_name, saver.save_tensor_name, saver.restore_op_name):
        names.add(tensor.split(":")[0])
    for collection in meta_graph.collection_def.values():
        names.update(n.split(":")[0].lstrip("^") for n in collection.node_list.value)
    return names


#: The passes, in the order they run (bench/export_size.py measures each).
PASSES = {
    "merge identical constants": _merge_constants_pass,
    "short function-private names": _rename_functions_pass,
    "short variable handle names": _rename_variable_handles,
}
