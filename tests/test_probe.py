"""The end-of-demo probe on a real pretraining run: masked tokens with the generator's guesses, the discriminator's
flags."""

from korpat_jax.probe import SENTENCE, probe


def test_probe_shows_generator_guesses_and_discriminator_flags(pretrained):
  lines = probe(str(pretrained), SENTENCE, every=4, top_k=2)
  assert lines[0].startswith("probe of") and "(step 30)" in lines[0]
  assert "[MASK]" in lines[1] and lines[1].count("[MASK]") == len(lines) - 3
  guesses = [line for line in lines if "-> generator:" in line]
  assert guesses and all(line.count(",") == 1 for line in guesses)  # top 2, each with its probability
  assert lines[-1].startswith("  discriminator flags as replaced: ")
