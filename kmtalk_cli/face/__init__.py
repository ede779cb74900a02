"""Face templates: the bundled head mesh, user meshes and VOCASET/BIWI templates, with regions."""

from .template import (
    FaceTemplate,
    bundled_template,
    load_template,
    read_regions_dir,
    save_template,
)

__all__ = ["FaceTemplate", "bundled_template", "load_template", "read_regions_dir", "save_template"]
