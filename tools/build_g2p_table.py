"""Learn the letter-to-sound table from pocketsphinx's CMUdict: ``kmtalk_cli/alignment/g2p_table.txt.gz``.

kmtalk pronounces words missing from CMUdict with :mod:`kmtalk_cli.alignment.g2p`, whose table
is learnt from CMUdict itself. Learning takes about ten seconds, so the result is committed and
nothing is learnt at run time; rerun this only when the dictionary (the pinned pocketsphinx) or
the learning code changes. The output is byte-identical for the same inputs.

    python tools/build_g2p_table.py [--out kmtalk_cli/alignment/g2p_table.txt.gz]
"""

from __future__ import annotations

import argparse
import gzip
import sys
import time
from pathlib import Path

from kmtalk_cli.alignment.g2p import TABLE_PATH, dump_table, learn
from kmtalk_cli.alignment.lexicon import _cmudict
from kmtalk_cli.atomic import atomic_output


def main(argv: list[str] | None = None) -> int:
    """Learn from the whole dictionary and write the gzipped table atomically."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=TABLE_PATH, help="Where to write the table.")
    args = parser.parse_args(argv)
    entries = _cmudict()
    if not entries:
        print("pocketsphinx's CMUdict was not found; install kmtalk first.", file=sys.stderr)
        return 1
    start = time.perf_counter()
    model = learn(entries)
    data = gzip.compress(dump_table(model).encode("ascii"), compresslevel=9, mtime=0)
    with atomic_output(args.out, force=True) as tmp:
        tmp.write_bytes(data)
    print(f"{args.out}: {len(model.table)} windows, {len(data) / 1e6:.2f} MB, learnt in {time.perf_counter() - start:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
