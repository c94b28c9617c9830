"""A project as a printable comic: PDF and CBZ exports (the JSON bundle is `whole/`)."""
