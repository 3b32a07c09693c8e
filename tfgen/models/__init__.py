"""Model families. Importing this package registers every model class."""

from tfgen.models.base import GenerativeModel, get_model_class, register, registered_models  # noqa: F401
