"""Fine-tuning: tokenized-feature caches (features.py), bad-input reports (report.py), the windows over long token
sequences (windows.py), the `finetune` and `predict` commands. The training itself runs on the shared loop
(korpat_jax.train) through the fine-tuning tasks in korpat_jax.tasks; each task's readers live in korpat_jax.ner,
korpat_jax.classification and korpat_jax.qa."""
