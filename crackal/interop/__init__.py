"""Other tools' label formats: Label Studio results (brush RLE, polygons, rectangles) and COCO."""
