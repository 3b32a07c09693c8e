"""Sample-quality evaluation of exports (`tfgen evaluate`) and the training of the
classifiers whose features the metrics use (`tfgen train-classifier`).

The metrics themselves are `tfgen.metrics.sample_quality`, the feature networks
`tfgen.metrics.features`; this package draws samples from an export or a served model
(through `tfgen.latent.callers`, like the latent tools) and compares them with the
held-out split of the model's dataset.
"""
