"""The HTTP APIs' request and response models (pydantic), kept apart from the use cases: the
handlers validate the use cases' answers into them, and Powertools documents them in the
OpenAPI document (``python -m infra.openapi``)."""
