"""Build the viewer's vendored three.js bundle from npm: ``kmtalk_cli/viewer/assets/three-bundle.min.js``.

The web viewer must work offline from ``file://``, so three.js travels inside every page.
This tool fetches pinned versions of ``three`` and ``esbuild`` with ``npm`` into a temporary
directory and bundles just what ``viewer.js`` uses (the core, GLTFLoader and its helpers,
OrbitControls) into one minified script that defines the global ``KMTALK_THREE``. npm's
``three`` no longer ships a minified build, and tree-shaking keeps the page about 650 kB
instead of the 2.1 MB of the full module build. It runs only when the pin changes; the
result is committed, so installing kmtalk needs neither node nor network.

    python tools/build_viewer_assets.py [--out kmtalk_cli/viewer/assets]

Needs ``node`` and ``npm`` (Debian: ``nodejs npm``) and access to the npm registry.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

THREE_VERSION = "0.187.0"
ESBUILD_VERSION = "0.28.2"
BUNDLE = "three-bundle.min.js"
LICENSE = "LICENSE-three.txt"
GLOBAL_NAME = "KMTALK_THREE"
#: Everything viewer.js takes from KMTALK_THREE; the bundle exports exactly these.
CORE_EXPORTS = (
    "AnimationMixer",
    "Box3",
    "Color",
    "DirectionalLight",
    "HemisphereLight",
    "LoopRepeat",
    "PerspectiveCamera",
    "Scene",
    "SRGBColorSpace",
    "Vector3",
    "WebGLRenderer",
)
ADDON_EXPORTS = {
    "GLTFLoader": "three/addons/loaders/GLTFLoader.js",
    "OrbitControls": "three/addons/controls/OrbitControls.js",
}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "kmtalk_cli" / "viewer" / "assets"
# Sequences that would end or corrupt an inline <script> element.
_UNSAFE_IN_SCRIPT = re.compile(r"</script|<!--|<script", re.IGNORECASE)


def run(command: list[str], cwd: Path) -> None:
    print("+", " ".join(command), file=sys.stderr)
    subprocess.run(command, cwd=cwd, check=True)


def entry_module() -> str:
    lines = [f"export {{ {', '.join(CORE_EXPORTS)} }} from 'three';"]
    lines += [f"export {{ {name} }} from '{module}';" for name, module in ADDON_EXPORTS.items()]
    return "\n".join(lines) + "\n"


def build(out: Path) -> dict:
    """Install the pins, bundle, check the result can be inlined, and write assets + notes."""
    npm = shutil.which("npm")
    if npm is None:
        sys.exit("npm is not installed (Debian: apt-get install nodejs npm).")
    with tempfile.TemporaryDirectory(prefix="kmtalk-viewer-") as scratch:
        work = Path(scratch)
        (work / "package.json").write_text(json.dumps({"name": "kmtalk-viewer-build", "private": True}))
        # --ignore-scripts: nothing from the registry runs here; esbuild's launcher finds its
        # platform binary (an optional dependency package) without its install script.
        run([npm, "install", "--no-audit", "--no-fund", "--no-package-lock", "--ignore-scripts",
             f"three@{THREE_VERSION}", f"esbuild@{ESBUILD_VERSION}"], work)
        installed = json.loads((work / "node_modules" / "three" / "package.json").read_text())["version"]
        if installed != THREE_VERSION:
            sys.exit(f"npm installed three {installed}, not the pinned {THREE_VERSION}.")
        (work / "entry.js").write_text(entry_module())
        banner = (f"/*! three.js {THREE_VERSION} (npm 'three', MIT licence: {LICENSE}) bundled for kmtalk's viewer "
                  f"by tools/build_viewer_assets.py with esbuild {ESBUILD_VERSION} */")
        run([str(work / "node_modules" / ".bin" / "esbuild"), "entry.js", "--bundle", "--minify",
             "--format=iife", f"--global-name={GLOBAL_NAME}", "--legal-comments=inline",
             "--target=es2020", f"--banner:js={banner}", "--log-level=warning", f"--outfile={BUNDLE}"], work)
        code = (work / BUNDLE).read_text(encoding="utf-8")
        unsafe = _UNSAFE_IN_SCRIPT.search(code)
        if unsafe:
            sys.exit(f"The bundle contains {unsafe.group(0)!r}, which cannot be inlined in a <script> element.")
        out.mkdir(parents=True, exist_ok=True)
        (out / BUNDLE).write_text(code, encoding="utf-8")
        shutil.copyfile(work / "node_modules" / "three" / "LICENSE", out / LICENSE)
    digest = hashlib.sha256(code.encode("utf-8")).hexdigest()
    notes = {"three": THREE_VERSION, "esbuild": ESBUILD_VERSION, "bytes": len(code.encode("utf-8")), "sha256": digest}
    (out / "README.md").write_text(readme(notes), encoding="utf-8")
    return notes


def readme(notes: dict) -> str:
    exports = ", ".join([*CORE_EXPORTS, *ADDON_EXPORTS])
    return f"""# Viewer assets

- `page.html`, `viewer.js`: kmtalk's page template and player (MIT, part of kmtalk).
- `{BUNDLE}`: **three.js {notes['three']}** (npm package `three`, MIT licence, copyright
  three.js authors: `{LICENSE}`), bundled and minified by `tools/build_viewer_assets.py` with
  esbuild {notes['esbuild']}. It defines the global `{GLOBAL_NAME}` with: {exports}.
  {notes['bytes']:,} bytes, sha256 `{notes['sha256']}`.

Every page `kmtalk view` writes inlines these files, so it plays offline from `file://`.
Rebuild (needs node, npm and the npm registry) after changing the pins or the export list:

    python tools/build_viewer_assets.py
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="assets directory to write")
    notes = build(parser.parse_args().out)
    print(f"three {notes['three']}: {notes['bytes']:,} bytes, sha256 {notes['sha256']}", file=sys.stderr)


if __name__ == "__main__":
    main()
