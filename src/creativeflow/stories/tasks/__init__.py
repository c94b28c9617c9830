"""The text tasks about the story: what a text task about a project, chapter, scene, panel or
character is given, gathered from the story (`context.py`, registered with the providers'
task contexts; read by `service.py` through `repository.py`)."""
