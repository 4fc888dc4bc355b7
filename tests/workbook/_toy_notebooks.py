"""Toy notebooks for the runner and task tests: a parameters cell, then a body that succeeds or fails."""

import nbformat

PARAMS = 'profile = "full"\nseed = 0\ndevice = "auto"\noutput_dir = ""\nvalue = 1\n'
GOOD = """
import json, pathlib
out = pathlib.Path(output_dir)
(out / "claims.json").write_text(json.dumps({"value": value, "profile": profile}))
(out / "figure.png").write_bytes(b"png")
"""
BAD = 'raise RuntimeError("the claim did not reproduce")'


def make_notebook(path, body):
    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell(PARAMS)
    params.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# toy"), params, nbformat.v4.new_code_cell(body)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
