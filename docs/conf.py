"""Sphinx configuration of the documentation site (build: ``bash scripts/docs.sh``)."""

import os
import sys

# Document the package of this source tree, whichever copy the environment has installed
sys.path.insert(0, os.path.abspath(".."))

import sb3_gail_plugin

project = "sb3-gail-plugin"
author = "sb3-gail-plugin contributors"
copyright = "sb3-gail-plugin contributors"
release = sb3_gail_plugin.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.viewcode",
]
source_suffix = {".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Markdown pages (MyST): anchors for "page.md#section" links
myst_heading_anchors = 3

# API reference from the docstrings (reST ``:param:`` fields)
autodoc_default_options = {"members": True, "show-inheritance": True, "member-order": "bysource"}
autodoc_typehints = "description"
autodoc_class_signature = "separated"
autoclass_content = "class"

html_theme = "sphinx_rtd_theme"
html_title = f"sb3-gail-plugin {release}"
html_show_sourcelink = False
html_static_path = ["_static"]
html_css_files = ["custom.css"]
