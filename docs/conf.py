"""Sphinx configuration: the API reference comes from the docstrings (NumPy style, napoleon),
the prose pages are Markdown (MyST) and include the benchmark tables from ``bench/`` as they
are, so the numbers on the site are the ones in the repository.

Build: ``python -m sphinx -W --keep-going -b html docs docs/_build/html`` (zero warnings).
"""

import os
import sys

sys.path.insert(0, os.path.abspath(".."))  # an editable install works too; this covers a bare checkout

import fastal  # noqa: E402

project = "fastal"
author = "the fastal developers"
copyright = "2026, the fastal developers"
release = fastal.__version__
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = ["_build"]

# Docstrings: NumPy style only; a parameter's type comes from its docstring, not the signature.
napoleon_google_docstring = False
napoleon_numpy_docstring = True
napoleon_use_rtype = False
napoleon_use_ivar = True
autodoc_member_order = "bysource"
autodoc_typehints = "none"
autodoc_default_options = {"members": False}
add_module_names = False

# MyST: `{include}` of bench/*.md, tables, and $-free text (the bench files use plain symbols).
myst_enable_extensions = ["colon_fence"]
myst_heading_anchors = 3

html_theme = "furo"
html_title = f"fastal {release}"


# ---------------------------------------------------------------------------------------
# Pages generated from the code at build time, so that they cannot drift from it:
# the strategy registry as a table, and every command's --help.


def _markdown_cell(text) -> str:
    return str(text).replace("|", "\\|").replace("*", "\\*").replace("\n", " ")


def _strategies_table() -> str:
    lines = ["| strategy | needs | options | what it picks |", "|---|---|---|---|"]
    for name, strategy in fastal.STRATEGIES.items():
        needs = ", ".join(strategy.needs) or "-"
        options = ", ".join(f"`{o}`" for o in strategy.options) or "-"
        default = " **(default)**" if name == fastal.DEFAULT_STRATEGY else ""
        lines.append(f"| `{name}`{default} | {needs} | {options} | "
                     f"{_markdown_cell(strategy.description)} |")
    return "\n".join(lines) + "\n"


def _cli_reference() -> str:
    import argparse
    import contextlib
    import io

    from fastal.cli import main

    def help_of(argv):
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):
            main([*argv, "--help"])
        return buffer.getvalue().rstrip()

    top = help_of([])
    from fastal.cli import _parser  # the sub-command names, in `fastal --help` order
    sub = next(a for a in _parser()._actions if isinstance(a, argparse._SubParsersAction))
    parts = ["# Command line\n",
             "Every command's `--help`, generated from the parser at build time.\n",
             "## fastal\n", "```text", top, "```\n"]
    for name in sub.choices:
        parts += [f"## fastal {name}\n", "```text", help_of([name]), "```\n"]
    return "\n".join(parts)


def _label_efficiency_summary() -> str:
    """The "## Summary..." section of bench/label_efficiency.md (whatever its exact title)."""
    report = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "bench",
                          "label_efficiency.md")
    section, inside = [], False
    with open(report, encoding="utf-8") as f:
        for line in f:
            if line.startswith("## "):
                if inside:
                    break
                inside = line.startswith("## Summary")
                continue
            if inside:
                section.append(line)
    if not section:  # the report was reorganised: point at it instead of failing the build
        print("docs: no '## Summary' section in bench/label_efficiency.md; linking the report")
        return "See the [full report](bench/label_efficiency.md).\n"
    return "".join(section).strip() + "\n"


def _write_generated() -> None:
    out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_generated")
    os.makedirs(out, exist_ok=True)
    os.environ["COLUMNS"] = "100"  # argparse wraps help to the terminal width
    pages = {"strategies.md": _strategies_table(), "cli.md": _cli_reference(),
             "label_efficiency_summary.md": _label_efficiency_summary()}
    for name, text in pages.items():
        path = os.path.join(out, name)
        old = open(path, encoding="utf-8").read() if os.path.exists(path) else None
        if text != old:  # rewrite only on change, so incremental builds stay incremental
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)


_write_generated()
exclude_patterns.append("_generated")
