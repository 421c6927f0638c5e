"""The README's hand-composed pipeline runs as printed."""

import pathlib
import re

import numpy as np

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_functional_pipeline_example_runs():
  blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
  example = next(b for b in blocks if "compile_scan" in b)
  scope = {}
  exec(compile(example, "README.md", "exec"), scope)  # pylint: disable=exec-used
  labels, q, p = scope["labels"], np.asarray(scope["q"]), np.asarray(scope["p"])
  assert labels.shape == (1797,) and len(np.unique(labels)) > 1
  np.testing.assert_allclose(q.sum(1), 1.0, rtol=1e-5)
  np.testing.assert_allclose(p.sum(1), 1.0, rtol=1e-5)
  assert np.isfinite(float(scope["loss"]))
