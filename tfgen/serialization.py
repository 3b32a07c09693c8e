"""Config helper for layers and models that store constructor arguments under their names."""


def attribute_config(obj, names):
    """`{name: obj.name}` for constructor arguments kept as attributes of the same name."""
    return {name: getattr(obj, name) for name in names}
