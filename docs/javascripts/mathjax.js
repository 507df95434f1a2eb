// MathJax 3 configuration for pymdownx.arithmatex (generic mode); the MathJax file itself is
// bundled into the site (assets/mathjax/), so equations render without a network.
window.MathJax = {
  tex: { inlineMath: [["\\(", "\\)"]], displayMath: [["\\[", "\\]"]], processEscapes: true, processEnvironments: true },
  options: { ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex" },
  svg: { fontCache: "global" },
};
