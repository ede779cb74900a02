"""A training run's starting point: the untrained model for a corpus and its checkpoint description.

Vertex count, fps, style count and region masks always come from the data, so a config file
only sets sizes; ``kmtalk train``, the tests and the benchmarks all build runs here.
"""

from __future__ import annotations

from typing import Any


def build_run(
    backbone: str,
    dataset: Any,
    *,
    preset: str = "default",
    overrides: dict[str, Any] | None = None,
    key_motions: bool = False,
    key_motion_overrides: dict[str, Any] | None = None,
) -> tuple[Any, dict[str, Any], Any]:
    """The untrained model for ``dataset`` (a key-motion wrapper with ``key_motions``), its
    checkpoint description, and the lip indices the validation lip error uses."""
    import numpy as np

    from .backbones import create_backbone, make_config
    from .evaluation import resolve_regions

    styles = dataset.train_subjects()
    n_vertices = next(iter(dataset.templates.values())).shape[0]
    regions = resolve_regions(dataset, required=("lips",))
    lips, upper = regions.lips, regions.upper_face
    forced = {
        "n_vertices": n_vertices,
        "fps": dataset.fps,
        "n_styles": len(styles),
        "lip_vertices": tuple(int(i) for i in lips),
        "upper_face_vertices": tuple(int(i) for i in upper),
    }
    user = dict(overrides or {})
    if key_motions:
        from .keymotion_model import KeyMotionConfig

        km_config = KeyMotionConfig.from_dict(key_motion_overrides or {})
        user["condition_dim"] = km_config.embed_dim
    config = make_config(backbone, preset, **{**user, **forced})
    if "period" in config.to_dict() and "period" not in user:  # FaceFormer/CodeTalker: one period per second
        config = config.replace(period=int(round(dataset.fps)))
    model = create_backbone(backbone, config)
    description: dict[str, Any] = {
        "kind": "backbone",
        "backbone": backbone,
        "config": config.to_dict(),
        "styles": styles,
        "template": {"name": dataset.root.name, "n_vertices": n_vertices},
        "training": {"data": str(dataset.root), "preset": preset},
    }
    if key_motions:
        from .keymotion_model import KeyMotionModel

        model = KeyMotionModel(model, km_config)
        if km_config.rig_prior:
            model.key_decoder.init_rig_prior()
        description["kind"] = "key-motion"
        description["key_motions"] = km_config.to_dict()
    return model, description, np.asarray(lips)
