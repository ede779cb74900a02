"""Backbone models (FaceFormer, CodeTalker, SelfTalk styles) behind one registry.

Installed as ``kmtalk_cli.backbones``; the registry arrives with the backbones issue.
"""
