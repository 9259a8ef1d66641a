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

  // KaTeX pins an equation's \tag to the right edge of the column. When the
  // equation is wider than the space left of the tag (narrow screens), the two
  // would overlap; such a display gets the class "eq-tag-below" and the
  // stylesheet moves its tag onto a line of its own. Checked again on resize.
  function placeTags() {
    var displays = document.querySelectorAll(".katex-display");
    for (var i = 0; i < displays.length; i++) {
      var display = displays[i];
      var tag = display.querySelector(".katex-html > .katex-tag");
      if (!tag) continue;
      display.classList.remove("eq-tag-below");
      var tagLeft = tag.getBoundingClientRect().left;
      var bases = display.querySelectorAll(".katex-html > .katex-base");
      var right = -Infinity;
      for (var j = 0; j < bases.length; j++) {
        right = Math.max(right, bases[j].getBoundingClientRect().right);
      }
      // 8 px of air between the equation and its tag.
      if (right + 8 > tagLeft) display.classList.add("eq-tag-below");
    }
  }

  function typeset() {
    var nodes = document.querySelectorAll(".arithmatex");
    for (var i = 0; i < nodes.length; i++) {
      renderMathInElement(nodes[i], options);
    }
    placeTags();
  }

  var resizeTimer = null;
  window.addEventListener("resize", function () {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(placeTags, 100);
  });

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
