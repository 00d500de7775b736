"""Sphinx configuration of the cortex_ep documentation.

Build (warnings are errors; the gallery in ``examples/`` is executed)::

    pip install -e '.[docs]' && sphinx-build -W -b html docs docs/_build/html
"""

import os
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
# the gallery trains small networks: keep each example to one thread on shared machines
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MPLBACKEND", "Agg")

import cortex_ep  # noqa: E402

project = "cortex_ep"
author = "the cortex_ep authors"
copyright = "cortex_ep authors"
release = version = cortex_ep.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.intersphinx",
    "numpydoc",
    "sphinx_gallery.gen_gallery",
]

exclude_patterns = ["_build", "examples"]
templates_path = []
html_theme = "alabaster"
html_static_path = []
html_title = f"cortex_ep {release}"

# the API pages: one per module, generated from the numpydoc docstrings
autosummary_generate = True
autodoc_default_options = {"members": True, "show-inheritance": False}
autodoc_member_order = "bysource"
autodoc_typehints = "none"  # the numpydoc sections carry types, shapes and units
numpydoc_show_class_members = False
numpydoc_validation_checks = set()
numpydoc_xref_param_type = False

# offline builds: no inventories are fetched; links to other projects are plain URLs
intersphinx_mapping = {}

sphinx_gallery_conf = {
    "examples_dirs": "examples",
    "gallery_dirs": "auto_examples",
    "filename_pattern": r"/plot_",
    "within_subsection_order": "FileNameSortKey",
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "abort_on_example_error": True,
    "plot_gallery": "True",
}


def _escape_absolute_values(app, what, name, obj, options, lines):
    """Docstrings write an absolute value as |x| (plain text, as help() shows it).

    reStructuredText reads |x| as a substitution reference: escape the bars,
    outside inline literals, so the page shows what help() shows.
    """
    for i, line in enumerate(lines):
        parts = line.split("``")
        lines[i] = "``".join(re.sub(r"(?<!\\)\|", r"\\|", part) if k % 2 == 0 else part
                             for k, part in enumerate(parts))


def setup(app):
    # before numpydoc (priority 500) parses the sections
    app.connect("autodoc-process-docstring", _escape_absolute_values, priority=400)
