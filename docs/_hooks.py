"""MkDocs hooks of the qnjax documentation (``hooks:`` in ``mkdocs.yml``).

* The API reference is generated from ``qnjax._EXPORTS`` (the table behind ``qnjax.__all__``):
  one page per module, one mkdocstrings entry per public name, so a name added to the package
  appears in the reference without editing the docs.
* MathJax 3 (``tex-svg-full.js``, self-contained: SVG output needs no web fonts) is copied from
  the ``django-static-mathjax`` wheel into ``assets/mathjax/``, so equations render offline.
* Sphinx roles left in docstrings (``:func:`x``` and friends) are shown as plain code
  (``~a.b.c`` as ``c``, as Sphinx does).
"""

from __future__ import annotations

import ast
import os
import re
from pathlib import Path

from mkdocs.structure.files import File

ROOT = Path(__file__).resolve().parent.parent
MATHJAX_FILE = "tex-svg-full.js"

# Page title and one sentence per module of the public surface, in the order of qnjax._EXPORTS.
_MODULE_TEXT = {
    "states": ("State algebra: representations", "Bell-diagonal arrays, Werner parameters, "
               "density matrices and Walsh coordinates, and the conversions between them."),
    "channels": ("State algebra: noise channels", "Pauli channels, depolarizing, dephasing and "
                 "T1/T2 memory decoherence on Bell-diagonal arrays and density matrices."),
    "ops": ("State algebra: swap and distillation", "Entanglement swapping (ideal and noisy BSM) "
            "and DEJMPS / BBPSSW distillation in closed form."),
    "keyrate": ("Key rates and bounds", "QBERs, BB84 and six-state secret fractions, and the "
                "PLOB / TGW repeaterless bounds (all in bits)."),
    "physical": ("Physical layer", "Fibre loss, heralding schemes and memories: hardware in km, "
                 "s and efficiencies mapped to the engines' step model."),
    "circuits": ("Circuit level", "Density-matrix tensors of several pairs: gates, noise, "
                 "measurements, and the circuit forms of swap and distillation."),
    "protocol": ("Protocols", "Static swap/distill trees over elementary links, shared by the "
                 "exact and Monte Carlo engines."),
    "chain": ("The chain model", "`Chain`: the parameters of a repeater chain (or a batch of "
              "chains) as one pytree, accepted by the exact engine, Monte Carlo and the optimizer."),
    "exact": ("Exact delivery engine", "Delivery-time distribution, delivered state and key rate "
              "of a nested protocol with cut-offs, exactly, batched and differentiable."),
    "montecarlo": ("Monte Carlo engine", "Batched trajectories of the nested model and of "
                   "swap-asap chains, streamed in fixed-size chunks."),
    "design": ("Design optimizer", "Scenarios, the optimizer (`optimize`: one problem) and "
               "distance sweeps (`sweep`: optimize at many distances; `sweep_designs` under "
               "Scale-out evaluates given designs without optimizing)."),
    "distributed": ("Scale-out", "Sharded design sweeps over devices, processes and hosts."),
    "_provenance": ("Provenance", "What produced a number: versions, device, dtype, settings "
                    "and a scenario fingerprint."),
    "export": ("Export", "Results as plain arrays and table rows; CSV files that round-trip exactly."),
    "sizing": ("Hardware requirements and sensitivities", "Elasticities of the optimized key "
                     "rate in every hardware parameter, and the least-cost hardware reaching a target."),
}


def _exports() -> dict[str, tuple[str, ...]]:
    """``qnjax._EXPORTS`` read from the source (no import: the docs build needs no JAX here)."""
    tree = ast.parse((ROOT / "qnjax" / "__init__.py").read_text(encoding="utf-8"))
    for node in tree.body:
        target = node.target if isinstance(node, ast.AnnAssign) else (
            node.targets[0] if isinstance(node, ast.Assign) else None)
        if isinstance(target, ast.Name) and target.id == "_EXPORTS":
            return ast.literal_eval(node.value)
    raise RuntimeError("qnjax/__init__.py defines no _EXPORTS table")


def api_pages() -> dict[str, str]:
    """``{"api/<module>.md": markdown}`` for every module of ``qnjax.__all__``."""
    pages = {}
    for mod, names in _exports().items():
        title, blurb = _MODULE_TEXT.get(mod, (f"qnjax.{mod.lstrip('_')}", ""))
        lines = [f"# {title}", "", f"`qnjax.{mod}` · {blurb}".rstrip(" ·"), "",
                 "Every name below is importable from the top level: "
                 + ", ".join(f"`qnjax.{n}`" for n in names) + ".", ""]
        lines += [f"::: qnjax.{mod}.{n}\n" for n in names]
        pages[f"api/{mod.lstrip('_')}.md"] = "\n".join(lines)
    return pages


def on_config(config, **kwargs):
    pages = api_pages()
    for entry in config["nav"]:
        if isinstance(entry, dict) and "API reference" in entry:
            section = entry["API reference"]
            for path, text in pages.items():
                section.append({text.splitlines()[0][2:]: path})
    return config


def on_files(files, config, **kwargs):
    for path, text in api_pages().items():
        files.append(File.generated(config, path, content=text))
    try:
        import mathjax  # the django-static-mathjax wheel (docs extra)
    except ImportError as exc:  # pragma: no cover - the docs extra installs it
        raise RuntimeError('MathJax is missing: pip install -e ".[docs]"') from exc
    src = Path(mathjax.__file__).resolve().parent / "static" / "mathjax" / "es5"
    if not (src / MATHJAX_FILE).is_file():
        raise RuntimeError(f"{MATHJAX_FILE} not found in the installed django-static-mathjax")
    files.append(File(MATHJAX_FILE, os.fspath(src), config["site_dir"], False,
                      dest_uri=f"assets/mathjax/{MATHJAX_FILE}"))
    return files


_ROLE = re.compile(r":(?:func|meth|class|mod|attr|data|obj|exc):<code>(~?)([^<]*)</code>")


def _role(m: re.Match) -> str:
    target = m.group(2)
    return f"<code>{target.rsplit('.', 1)[-1] if m.group(1) else target}</code>"


def on_page_content(html, page, config, files, **kwargs):
    return _ROLE.sub(_role, html)
