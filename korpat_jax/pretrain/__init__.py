"""The `pretrain` command (cli.py). Pretraining itself runs on the shared loop (korpat_jax.train) as the task in
korpat_jax/tasks/pretraining.py, with its step in korpat_jax/pretraining_step.py."""
