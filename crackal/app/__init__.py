"""Web services around a project: the labelling web app and dashboard (``crackal serve``, see
``crackal.app.server``). Starlette and uvicorn are imported only here."""
