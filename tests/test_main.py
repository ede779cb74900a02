"""The console script's exit: fast once torch is loaded, with exit handlers run and output flushed."""

from __future__ import annotations

import subprocess
import sys
import textwrap


def _run(body: str) -> subprocess.CompletedProcess:
    code = textwrap.dedent(
        """
        import atexit, sys
        atexit.register(lambda: print("handler ran"))
        from kmtalk_cli.__main__ import fast_exit
        """
    ) + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)


def test_fast_exit_keeps_the_code_the_handlers_and_buffered_output():
    done = _run(
        """
        import torch
        print("buffered", end="")
        sys.stderr.write("said")
        fast_exit(3)
        print("not reached")
        """
    )
    assert done.returncode == 3
    assert done.stdout == "bufferedhandler ran\n" and done.stderr == "said"


def test_fast_exit_returns_without_torch_with_a_message_or_with_threads_running():
    done = _run(
        """
        import threading, time
        fast_exit(0)
        print("without torch")
        import torch
        fast_exit("a message")
        print("with a message")
        threading.Thread(target=time.sleep, args=(0.2,)).start()
        fast_exit(0)
        print("with a thread")
        """
    )
    assert done.returncode == 0
    assert done.stdout.split("\n")[:3] == ["without torch", "with a message", "with a thread"]


def test_openmp_threads_sleep_while_they_wait_and_blas_gets_one_unless_the_user_says_otherwise():
    import os

    code = textwrap.dedent(
        """
        import atexit, os, sys
        from kmtalk_cli.__main__ import main
        atexit.register(lambda: print("policy", os.environ.get("OMP_WAIT_POLICY"), os.environ.get("OPENBLAS_NUM_THREADS")))
        sys.argv = ["kmtalk", "--help"]
        main()
        """
    )
    for given, expected in (({}, "PASSIVE 1"), ({"OMP_WAIT_POLICY": "ACTIVE", "OPENBLAS_NUM_THREADS": "2"}, "ACTIVE 2")):
        env = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "OPENBLAS_NUM_THREADS")} | given
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env)
        assert done.stdout.strip().endswith(f"policy {expected}"), done.stdout[-200:]
