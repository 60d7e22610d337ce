"""What a training run leaves behind and every later step reads: its configuration
(``config.py``), its checkpoints (``checkpoint.py``: written atomically, read back into a model
or a detector) and its folder (``folders.py``). Below training and inference alike, so that
predicting, exporting or serving a model never imports the training code."""
