"""Training: YAML config -> data -> strategy -> fit -> checkpoints -> export.

- `config`: the `TrainConfig` dataclasses and `load_config(path)`.
- `strategy`: `resolve_strategy` (default, mirrored, multi_worker via TF_CONFIG, tpu).
- `callbacks`: crash-safe `CheckpointStore`, `NaNGuard`, TensorBoard summaries.
- `trainer`: `train(config, resume=False)` and `export_run(run_dir, base_path)`.
- `cli`: `tfgen train CONFIG` and `tfgen export RUN_DIR`.

Nothing is imported here, so `tfgen --help` does not load TensorFlow.
"""
