"""Executes every notebook in this directory headless. By default the outputs
are written back in place (so readers see the plots without running anything:
`make notebooks`); with `--check` nothing is written (`make test`). A cell that
fails fails the run, naming the notebook and the error."""
import sys
from pathlib import Path

import nbformat
from nbclient import NotebookClient

here = Path(__file__).resolve().parent
failed = []
for path in sorted(here.glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    try:
        NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(here)}}).execute()
    except Exception as e:  # the error names the cell and its traceback
        failed.append(path.name)
        print(f"{path.name}: {e}", file=sys.stderr)
        continue
    if "--check" not in sys.argv:
        nbformat.write(nb, path)
    print(f"{path.name}: ran {len(nb.cells)} cells", file=sys.stderr)
sys.exit(1 if failed else 0)
