"""The package as a user installs it: a wheel built from the repository's files, installed into
a fresh virtual environment outside the checkout, trains MDSRec from there."""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

from helpers import FAST_MODEL, MM_SLICE, table_rows

REPO = Path(__file__).resolve().parents[1]
BUILD_FILES = ("recbole_mdsrec", "properties", "setup.cfg", "pyproject.toml", "README.md")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel, built from a copy of the files a source distribution would hold."""
    source = tmp_path_factory.mktemp("source")
    for name in BUILD_FILES:
        copy = shutil.copytree if (REPO / name).is_dir() else shutil.copy2
        copy(REPO / name, source / name, **({"ignore": shutil.ignore_patterns("__pycache__")} if copy is shutil.copytree else {}))
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "-w", str(out),
                    str(source)], check=True, capture_output=True, timeout=300)
    (built,) = out.glob("recbole_mdsrec-*.whl")
    return built


def test_the_wheel_holds_every_module_and_the_yaml(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    modules = {str(p.relative_to(REPO)) for p in (REPO / "recbole_mdsrec").rglob("*.py")}
    assert modules <= names  # setup.cfg lists every package
    yaml_files = {"recbole_mdsrec/properties/" + str(p.relative_to(REPO / "properties")) for p in (REPO / "properties").rglob("*.yaml")}
    assert yaml_files <= names and "recbole_mdsrec/properties/model/MDSRec.yaml" in yaml_files


@pytest.mark.shared_data
def test_mdsrec_trains_from_a_wheel_installed_outside_the_checkout(wheel, mm_slice, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # The heavy dependencies (torch, RecBole) come from this interpreter's site-packages, listed
    # after the new environment's own (a plain path: its .pth files, this checkout's editable
    # install among them, are not read); the plugin itself only from the wheel.
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()
    ours = {sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}
    (Path(purelib) / "dependencies.pth").write_text("\n".join(sorted(ours)) + "\n")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index",
                    str(wheel)], check=True, capture_output=True, timeout=300)
    work = tmp_path / "work"
    work.mkdir()
    where = subprocess.run([str(python), "-c", "import recbole_mdsrec.properties as p; print(p.path('overall.yaml'))"],
                           cwd=work, capture_output=True, text=True, check=True)
    assert where.stdout.strip().startswith(str(venv)), where.stdout  # not this checkout's copy
    options = {**{k: v for k, v in FAST_MODEL.items() if k != "state"}, "data_path": str(mm_slice), "epochs": 1, "train_batch_size": 512, "modalities": ["image", "text"],
               "checkpoint_dir": str(work / "saved"), "graph_cache_dir": str(work / "graphs")}
    command = [str(python), "-m", "recbole_mdsrec.cli", "--model=MDSRec", f"--dataset={MM_SLICE}",
               *(f"--{k}={v}" for k, v in options.items())]
    out = subprocess.run(command, cwd=work, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "Test results of MDSRec on ml-mm-slice (1 epochs" in out.stdout
    # quiet by default: no pandas/torch FutureWarnings, no GPU ids on a machine that uses none
    assert "Warning" not in out.stderr and "gpu_id" not in out.stderr + out.stdout, out.stderr[-2000:]
    metrics = {row[0]: row[1:] for row in table_rows(out.stdout)}
    assert set(metrics) >= {"recall", "ndcg", "mrr"} and 0 <= float(metrics["ndcg"][0]) <= 1
    assert list((work / "saved").glob("MDSRec-*.pth"))
