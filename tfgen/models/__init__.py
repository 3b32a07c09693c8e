"""Model families. Importing this package registers every model class."""

import importlib

from tfgen.models.base import GenerativeModel, get_model_class, register, registered_models
from tfgen.models.likelihood import LikelihoodModel

__all__ = ["GenerativeModel", "LikelihoodModel", "get_model_class", "register", "registered_models"]

# Each family registers its model classes when imported.
for _family in ("flows", "ppca", "vae", "autoregressive", "gan", "diffusion", "diffusion.score_model"):
    importlib.import_module(f"tfgen.models.{_family}")
