"""The story studio (graphic-novel-api.md): projects and their members, the chapter -> scene ->
panel hierarchy, cast, instructions, prompts, export. One sub-package per aggregate."""
