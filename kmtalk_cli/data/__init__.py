"""Talking-face datasets: the VOCASET/BIWI on-disk format and the synthetic corpus that mimics it."""

from __future__ import annotations
