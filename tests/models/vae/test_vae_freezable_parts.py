"""The VAE's freezable parts (`freezable_parts`, `part_variables`): what fine-tuning
freezes by name covers the model's trainable variables once each."""

import pytest
import zoo
from zoo import slow_unless

from tfgen.errors import UserError

VAES = sorted(name for name, (class_name, _) in zoo.LATENT_MODELS.items() if class_name == "VAE")
#: A gaussian decoder's scale, a VampPrior with a posterior flow, a flow prior with a class
#: embedding; the other variants under -m slow.
BY_DEFAULT = ("vae_vector_gaussian", "vae_binary_bernoulli_vamp_iaf", "vae_image_conditional_maf_sylvester")


@pytest.mark.parametrize("name", slow_unless(lambda n: n in BY_DEFAULT, VAES))
def test_parts_are_disjoint_and_cover_all_but_the_shared_class_embedding(name):
    model = zoo.cached(name)
    parts = {part: {v.ref() for v in model.part_variables(part)} for part in model.freezable_parts}
    assert parts["encoder"] and parts["decoder"]
    assert not parts["encoder"] & parts["decoder"] and not (parts["encoder"] | parts["decoder"]) & parts["prior"]
    rest = [v.name for v in model.trainable_variables if v.ref() not in set().union(*parts.values())]
    assert all("condition_embedding" in n for n in rest) and bool(rest) == model.data_spec.conditional
    assert bool(parts["prior"]) == (model.prior_name != "standard_normal")


def test_freezing_takes_a_part_out_of_what_the_optimizer_updates():
    model = zoo.build("vae_vector_gaussian")
    model.freeze(["decoder"])
    trained = {v.ref() for v in model.trained_variables("optimizer")}
    assert not trained & {v.ref() for v in model.part_variables("decoder")}
    assert {v.ref() for v in model.part_variables("encoder")} <= trained
    with pytest.raises(UserError, match="'prior' .* has no trainable variables"):
        model.freeze(["prior"])  # a standard normal prior
    with pytest.raises(UserError, match="its freezable parts are \\['encoder', 'decoder', 'prior'\\]"):
        model.freeze(["generator"])
    model.freeze([])
    assert len(model.trained_variables("optimizer")) == len(model.trainable_variables)
