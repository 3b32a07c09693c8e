"""Feature networks: InceptionV3 from a local weights file, the raw network, errors."""

import numpy as np
import pytest

from tfgen.data.spec import DataSpec
from tfgen.errors import UserError
from tfgen.metrics.features import INCEPTION_SIZE, load_feature_network


# Two InceptionV3 builds, an 87-95 MB weights file and 299x299 forward passes: 10-30 s each.
@pytest.mark.slow
@pytest.mark.parametrize("include_top", [False, True], ids=["notop", "with_top"])
def test_inception_v3_loads_a_saved_random_network_and_gives_its_features(tmp_path, include_top):
    from tfgen.backend import keras, tf

    keras.utils.set_random_seed(0)
    full = keras.applications.InceptionV3(include_top=include_top, weights=None,
                                          pooling=None if include_top else "avg",
                                          input_shape=(INCEPTION_SIZE, INCEPTION_SIZE, 3))
    path = str(tmp_path / "inception.h5")
    full.save_weights(path)
    # FID's features: the pool before the classifier (the notop model's output).
    reference = keras.Model(full.input, full.get_layer("avg_pool").output) if include_top else full
    net = load_feature_network("inception_v3", weights=path)
    spec = DataSpec((8, 8, 1), kind="image", levels=17)
    x = np.random.default_rng(0).integers(0, 17, size=(3, 8, 8, 1)).astype(np.float32)
    features = net.features(x, spec)
    # The documented preprocessing, by hand: [0, 16] -> [-1, 1], grey -> RGB, bilinear 299x299.
    images = tf.image.resize(np.repeat(x / 16.0 * 2.0 - 1.0, 3, axis=-1), [INCEPTION_SIZE, INCEPTION_SIZE],
                             method="bilinear", antialias=False)
    expected = reference(images, training=False).numpy()
    assert features.shape == (3, 2048) and net.dimension == 2048
    np.testing.assert_allclose(features, expected, rtol=1e-5, atol=1e-6)
    with pytest.raises(UserError, match="takes images with 1 or 3 channels"):
        net.features(np.zeros((2, 4)), DataSpec((4,)))
    bogus = tmp_path / "not_inception.h5"
    keras.Sequential([keras.layers.Dense(2, input_shape=(3,))]).save_weights(str(bogus))
    with pytest.raises(UserError, match="holds no InceptionV3 weights"):
        load_feature_network("inception_v3", weights=str(bogus))
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(UserError, match="not a Keras .h5 weights file"):
        load_feature_network("inception_v3", weights=str(tmp_path / "text.h5"))


def test_raw_features_and_name_errors():
    net = load_feature_network("raw")
    assert net.features(np.ones((4, 2, 3)), DataSpec((2, 3))).shape == (4, 6)
    with pytest.raises(UserError, match="unknown feature network 'vgg'"):
        load_feature_network("vgg")
    with pytest.raises(UserError, match="weights file is for inception_v3"):
        load_feature_network("raw", weights="w.h5")
    with pytest.raises(UserError, match="needs its weights file"):
        load_feature_network("inception_v3")
