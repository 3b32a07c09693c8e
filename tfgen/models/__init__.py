"""Model families. Importing this package registers every model class."""

from tfgen.models.base import GenerativeModel, get_model_class, register, registered_models  # noqa: F401
from tfgen.models.likelihood import LikelihoodModel  # noqa: F401

import tfgen.models.flows  # noqa: F401,E402  (registers the flows)
import tfgen.models.ppca  # noqa: F401,E402  (registers PPCA)
import tfgen.models.vae  # noqa: F401,E402  (registers VAE)
import tfgen.models.autoregressive  # noqa: F401,E402  (registers PixelCNN and WaveNet)
import tfgen.models.gan  # noqa: F401,E402  (registers GAN)
import tfgen.models.diffusion  # noqa: F401,E402  (registers DDPM)
import tfgen.models.diffusion.score_model  # noqa: F401,E402  (registers NCSN)
