#!/usr/bin/env bash
# align → animate → render on the bundled LibriVox clip, with the bundled default weights, offline.
# Writes into examples/out/ (run from anywhere: paths are relative to this script).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
out="$here/out"
mkdir -p "$out"
cp "$here/amiable.wav" "$here/amiable.txt" "$out/"

kmtalk align "$out/amiable.wav" --force                        # amiable.align.json: words and phones (transcript from amiable.txt)
kmtalk animate "$out/amiable.wav" --alignment "$out/amiable.align.json" --force   # amiable.npy (+ key motions)
kmtalk render "$out/amiable.npy" --audio "$out/amiable.wav" --force               # amiable.mp4 with the sound
echo "done: $out/amiable.mp4"
