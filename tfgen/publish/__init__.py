"""Publishing fine-tuned versions: lineage and the publish gate (`lineage`), rollback of
a served base path (`rollback`), `tfgen publish` (`cli`). See docs/architecture.md,
"Retraining and publishing"."""
