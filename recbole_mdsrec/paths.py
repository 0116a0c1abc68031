"""Where the plugin's own files live (an editable install keeps them beside the package)."""

from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
PROPERTIES_DIR = REPO_ROOT / "properties"
DATA_ROOT = REPO_ROOT / "dataset"
# The real data every developer and CI has beside the repository (see dataset/README.md).
SHARED_RAW_ROOT = REPO_ROOT.parent / "shared" / "datasets" / "raw"
