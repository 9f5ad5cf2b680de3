import pytest

from helpers import pretrain_config
from korpat_jax.mfu import mfu, peak_flops_per_device, training_flops_per_step
from korpat_jax.model import ElectraConfig


@pytest.mark.parametrize("variant, steps, published", [("small", 1_000_000, 1.29e18), ("base", 766_000, 6.42e19)])
def test_training_flops_agree_with_the_electra_paper(variant, steps, published):
  c = pretrain_config(variant)
  model = ElectraConfig.from_config(c.model)
  per_step = training_flops_per_step(model, c.train.batch_size, c.train.seq_len,
                                     int((c.objective.mask_prob + 0.005) * c.train.seq_len))
  assert per_step * steps == pytest.approx(published, rel=0.15)


def test_peak_table_and_mfu():
  assert peak_flops_per_device("NVIDIA H200") == 989e12
  assert peak_flops_per_device("Tesla V100-SXM2-32GB") == 125e12
  assert peak_flops_per_device("TPU v4") == 275e12
  assert peak_flops_per_device("cpu") is None
  assert mfu(1e12, 1.0, 1, "cpu") is None
  assert mfu(989e12 * 16 * 0.5, 1.0, 16, "NVIDIA H100 80GB HBM3") == pytest.approx(0.5)
