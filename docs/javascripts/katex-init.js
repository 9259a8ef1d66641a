// Typesets the math that pymdownx.arithmatex (generic mode) leaves in the page:
// inline math as \( ... \) and display math as \[ ... \], each inside an element
// of class "arithmatex". KaTeX and its auto-render extension are vendored, so
// nothing is fetched from the network.
(function () {
  "use strict";

  var options = {
    delimiters: [
      { left: "\\[", right: "\\]", display: true },
      { left: "\\(", right: "\\)", display: false },
    ],
    // An unknown command is shown in red (class "katex-error") instead of
    // aborting the page; the browser test fails on any such element.
    throwOnError: false,
    trust: false,
  };

  function typeset() {
    var nodes = document.querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      renderMathInElement(nodes[i], options);
    }
  }

  // Material for MkDocs announces every page load (including instant
  // navigation) on the `document$` observable; fall back to the plain DOM event.
  if (typeof document$ !== "undefined") {
    document$.subscribe(typeset);
  } else if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", typeset);
  } else {
    typeset();
  }
})();
