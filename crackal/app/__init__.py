"""Web services around a project: the labelling web app and dashboard (``crackal serve``, see
``crackal.app.server``) and the Label Studio ML backend (``crackal serve-ml``, see
``crackal.app.ml_backend``). Starlette and uvicorn are imported only here."""
