"""notebooks/colab.ipynb: stored clean, and run headless in its quick version
(``JDEC_QUICK=1``: sklearn digits, few epochs) it sweeps, draws, saves, loads and predicts."""

import base64
import os
import pathlib
import re
import subprocess
import sys

import jupyter_client.kernelspec
import nbclient
import nbformat
import pytest
from ipykernel import kernelspec as ipykernel_kernelspec

NOTEBOOK = pathlib.Path(__file__).resolve().parents[1] / "notebooks" / "colab.ipynb"
PNG = b"\x89PNG\r\n\x1a\n"


def test_notebook_is_valid_and_stored_without_outputs():
  nb = nbformat.read(NOTEBOOK, as_version=4)
  nbformat.validate(nb)
  code = [c for c in nb.cells if c.cell_type == "code"]
  assert code and all(not c.outputs and c.execution_count is None for c in code)


def _install_cell() -> str:
  nb = nbformat.read(NOTEBOOK, as_version=4)
  return next(c.source for c in nb.cells if c.cell_type == "code")


def test_install_cell_needs_jdec_repo_when_jdec_is_missing(monkeypatch):
  monkeypatch.setitem(sys.modules, "jdec", None)  # `import jdec` raises ImportError
  monkeypatch.delenv("JDEC_REPO", raising=False)
  with pytest.raises(RuntimeError, match="JDEC_REPO is not set: put the git URL"):
    exec(_install_cell(), {})  # pylint: disable=exec-used
  calls = []
  monkeypatch.setattr(subprocess, "run", lambda cmd, check: calls.append((cmd, check)))
  monkeypatch.setenv("JDEC_REPO", "https://example.org/jdec.git")
  with pytest.raises(ImportError):  # the stubbed pip installed nothing
    exec(_install_cell(), {})  # pylint: disable=exec-used
  assert calls == [([sys.executable, "-m", "pip", "install", "--quiet",
                     "git+https://example.org/jdec.git"], True)]


def _kernel_manager(folder: pathlib.Path):
  """A kernel manager whose only kernel runs ipykernel in this interpreter (sys.executable)."""
  ipykernel_kernelspec.write_kernel_spec(folder / "jdec-test-python")
  specs = jupyter_client.kernelspec.KernelSpecManager(kernel_dirs=[str(folder)])
  return jupyter_client.AsyncKernelManager(kernel_name="jdec-test-python",
                                           kernel_spec_manager=specs)


@pytest.fixture(scope="module")
def executed(tmp_path_factory):
  """The notebook run in a fresh working directory: ``(notebook, stdout text, workdir)``."""
  workdir = tmp_path_factory.mktemp("colab-notebook")
  nb = nbformat.read(NOTEBOOK, as_version=4)
  env = {**os.environ, "JDEC_QUICK": "1", "JAX_NUMPY_RANK_PROMOTION": "raise"}
  env.pop("JDEC_REPO", None)  # jdec is installed here: the install cell must not need it
  # conftest.py's compilation cache, shared with the rest of the suite.
  for name in ("JAX_COMPILATION_CACHE_DIR", "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS",
               "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES"):
    if name in os.environ:
      env[name] = os.environ[name]
  client = nbclient.NotebookClient(
      nb, km=_kernel_manager(tmp_path_factory.mktemp("kernels")), timeout=600,
      allow_errors=True, resources={"metadata": {"path": str(workdir)}})
  client.execute(env=env)
  text = "".join(o.get("text", "") for c in nb.cells if c.cell_type == "code"
                 for o in c.outputs if o.output_type == "stream" and o.name == "stdout")
  return nb, text, workdir


def test_every_cell_runs_without_errors_in_this_interpreter(executed):
  nb, text, _ = executed
  errors = [f"{o.ename}: {o.evalue}" for c in nb.cells if c.cell_type == "code"
            for o in c.outputs if o.output_type == "error"]
  assert not errors, errors
  assert all(c.execution_count for c in nb.cells if c.cell_type == "code")
  assert "already installed: skipping the install" in text
  assert re.search(r"^python: (.+)$", text, re.M).group(1) == sys.executable
  assert re.search(r"^default backend: (\w+)$", text, re.M)
  assert "digits: x (1797, 64) float32" in text and "(quick version)" in text


def test_the_sweep_scores_every_seed(executed):
  _, text, _ = executed
  per_seed = {int(s): float(a) for s, a in re.findall(r"^seed (\d+): ACC ([\d.]+)", text, re.M)}
  assert sorted(per_seed) == [0, 1]
  mean = float(re.search(r"^ACC mean ([\d.]+) sd", text, re.M).group(1))
  assert mean == pytest.approx(sum(per_seed.values()) / 2, abs=1e-4)
  # Chance on ten balanced classes is about 0.1-0.2; the quick settings reach about 0.7.
  assert all(0.4 < acc <= 1.0 for acc in per_seed.values()), per_seed


def test_the_four_pictures_are_shown(executed):
  nb, _, _ = executed
  pngs = [base64.b64decode(o.data["image/png"]) for c in nb.cells if c.cell_type == "code"
          for o in c.outputs if o.output_type == "display_data" and "image/png" in o.data]
  assert len(pngs) == 4 and all(p.startswith(PNG) and len(p) > 5000 for p in pngs)


def test_the_saved_model_loads_and_predicts_the_same(executed):
  _, text, workdir = executed
  saved = pathlib.Path(re.search(r"^saved model: (.+)$", text, re.M).group(1))
  assert saved.parent == workdir.resolve() and (saved / "meta.json").is_file()
  assert (saved / "params").is_dir()
  assert "loaded model's predictions equal the in-memory model's: True" in text
  acc = float(re.search(r"^ACC of the loaded model's predictions: ([\d.]+)$", text, re.M)[1])
  assert 0.4 < acc <= 1.0
