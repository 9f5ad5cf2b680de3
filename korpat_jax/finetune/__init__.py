"""Fine-tuning: task data readers, tokenized-feature caches, bad-input reports, the `finetune` and `predict`
commands. The training itself runs on the shared loop (korpat_jax.loop) through the tasks in korpat_jax.tasks."""
