"""Sphinx configuration of the twingraph documentation (build command in docs/README.rst)."""

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
# Document this checkout, also in the notebook kernels (they inherit the environment).
sys.path[:0] = [str(ROOT), str(DOCS / "_ext")]
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
# Kernels draw inline only when MPLBACKEND is unset (CI exports MPLBACKEND=Agg for the tests).
os.environ.pop("MPLBACKEND", None)

import twingraph  # noqa: E402

project = "twingraph"
author = "the twingraph authors"
copyright = "the twingraph authors, MIT license"
version = release = twingraph.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "myst_nb",
    "blockref",
]

exclude_patterns = ["_build", "README.rst", "**.ipynb_checkpoints", "jupyter_execute"]
templates_path = []

# API reference: numpy-style docstrings through napoleon. "Ports" is this project's
# section of a block's docstring; blockref turns it (and "Defaults") into tables.
autodoc_member_order = "bysource"
toc_object_entries = False  # page contents list sections; a block section holds one class
autodoc_typehints = "signature"
autodoc_preserve_defaults = False  # True reads defaults from the source, lacking the solver params ODE models inherit
autodoc_inherit_docstrings = False  # a block lists only the methods it documents itself
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_custom_sections = ["Ports", "Defaults"]

# Notebooks (tutorials, and the guide pages written as MyST notebooks) run at every
# build: their outputs are what the current code prints and draws. A cache keyed on
# the notebook text would keep showing old outputs after a change to the library.
nb_execution_mode = "force"
nb_execution_timeout = 300
nb_execution_raise_on_error = True
nb_execution_show_tb = True
nb_execution_in_temp = True  # files a notebook writes go to a temporary folder, not docs/
nb_output_stderr = "warn"  # a warning printed by a notebook fails the -W build
myst_enable_extensions = ["colon_fence", "dollarmath"]
myst_heading_anchors = 3

html_theme = "pydata_sphinx_theme"
html_title = f"twingraph {release}"
html_static_path = ["_static"]
html_css_files = ["twingraph.css"]
html_theme_options = {
    "navigation_depth": 3,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
    "footer_start": ["copyright"],
    "footer_end": ["sphinx-version"],
}
html_sidebars = {"index": []}
