"""Web services around a project: the Label Studio ML backend (``crackal serve-ml``, see
``crackal.app.ml_backend``). Starlette and uvicorn are imported only here."""
