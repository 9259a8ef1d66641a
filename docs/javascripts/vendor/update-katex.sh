#!/usr/bin/env bash
# Replaces the vendored KaTeX under docs/javascripts/vendor/katex with another
# release from the npm registry. Only needed when upgrading KaTeX: the docs build
# itself never touches the network.
#
#   docs/javascripts/vendor/update-katex.sh 0.19.1
set -euo pipefail

version="${1:?usage: $0 KATEX_VERSION}"
here="$(cd "$(dirname "$0")" && pwd)"
target="$here/katex"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

(cd "$work" && npm pack --silent "katex@$version" >/dev/null && tar xzf katex-*.tgz)
dist="$work/package/dist"

rm -rf "$target"
mkdir -p "$target/fonts" "$target/contrib"
cp "$dist/katex.min.js" "$dist/katex.min.css" "$target/"
cp "$dist/contrib/auto-render.min.js" "$target/contrib/"
# woff2 only: every browser that runs the site reads it, and katex.min.css lists
# it first, so the woff/ttf fallbacks are never requested.
cp "$dist"/fonts/*.woff2 "$target/fonts/"
cp "$work/package/LICENSE" "$target/LICENSE"
cat >"$target/README.md" <<TXT
KaTeX $version, vendored for the softeq documentation (MIT licence, see LICENSE).
Files: katex.min.js, katex.min.css, contrib/auto-render.min.js, fonts/*.woff2.
Refresh with docs/javascripts/vendor/update-katex.sh VERSION.
TXT
echo "KaTeX $version vendored into $target ($(du -sh "$target" | cut -f1))"
