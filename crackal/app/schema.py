"""What the ML backend needs from a Label Studio labelling config: the labels tag its
predictions fill (``from_name``), the image tag they are drawn on (``to_name``), the task data
key of the image (``$image``) and the label values, which must be the project's classes."""

from __future__ import annotations

from dataclasses import dataclass
from xml.etree import ElementTree

from crackal.active.label_studio import IMAGE, TOOL
from crackal.errors import CrackalError

PREDICTED_TAG = {"segmentation": "BrushLabels", "detection": "RectangleLabels"}  # what /predict returns, per task


@dataclass(frozen=True)
class LabelConfig:
    """The names a prediction must use, and the label values of every labels tag."""

    tool: str = TOOL
    image: str = IMAGE
    data_key: str = IMAGE
    labels: frozenset[str] = frozenset()


def read_label_config(xml: str, task: str) -> LabelConfig:
    """Find the project task's labels tag (``BrushLabels``, or ``RectangleLabels`` for detection),
    the ``Image`` tag it points to and every ``Label`` value; ``CrackalError`` when one is missing.

    >>> read_label_config('<View><Image name="img" value="$photo"/><BrushLabels name="tag" toName="img">'
    ...                   '<Label value="crack"/></BrushLabels></View>', "segmentation")
    LabelConfig(tool='tag', image='img', data_key='photo', labels=frozenset({'crack'}))
    """
    try:
        root = ElementTree.fromstring(xml)
    except ElementTree.ParseError as exc:
        raise CrackalError(f"the labelling config is not valid XML ({exc}); paste Label Studio's config as it is") from None
    tags = list(root.iter())
    wanted = PREDICTED_TAG[task]
    control = next((t for t in tags if str(t.tag).lower() == wanted.lower()), None)
    if control is None:
        raise CrackalError(f"the labelling config has no <{wanted}> tag, and this {task} project's predictions are "
                           f"{wanted} results; add one (with the project's classes as its labels) to the config")
    image = next((t for t in tags if str(t.tag).lower() == "image" and t.get("name") == control.get("toName")), None)
    if image is None:
        raise CrackalError(f"the <{wanted}> tag of the labelling config points to toName={control.get('toName')!r}, "
                           "but no <Image> tag has that name; make its toName the name of the Image tag")
    labels = frozenset(label.get("value", "") for tag in tags if str(tag.tag).lower().endswith("labels")
                       for label in tag if str(label.tag).lower() == "label")
    return LabelConfig(control.get("name", TOOL), image.get("name", IMAGE), (image.get("value") or "").lstrip("$") or IMAGE,
                       labels)


def project_task(task: dict, config: LabelConfig, annotations: list[dict] | None = None) -> dict:
    """A Label Studio task as ``crackal.active.label_studio`` reads it: its image URL under
    ``data.image`` whatever the config calls it, with ``annotations`` (default: the task's own)."""
    data: dict = task["data"] if isinstance(task.get("data"), dict) else {}
    return {"id": task.get("id"), "data": {**data, IMAGE: data.get(config.data_key, data.get(IMAGE, ""))},
            "annotations": (task.get("annotations") or []) if annotations is None else annotations}


def check_classes(config: LabelConfig, class_names: list[str]) -> None:
    """``CrackalError`` unless the config's labels are exactly the project's classes (1..K)."""
    expected = set(class_names[1:])
    missing, extra = sorted(expected - config.labels), sorted(config.labels - expected)
    if missing or extra:
        parts = ([f"missing {missing}"] if missing else []) + ([f"not classes of the project {extra}"] if extra else [])
        raise CrackalError(f"the labelling config's labels {sorted(config.labels)} are not this project's classes "
                           f"{class_names[1:]} ({'; '.join(parts)}); make its <Label value=...> entries exactly the "
                           "project's classes, as in the label_config.xml crackal writes with a queue exported for Label Studio")
