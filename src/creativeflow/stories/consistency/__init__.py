"""Character consistency: how far a panel's image has drifted from the character's references
(`features.py`), the names and places in a panel's text that do not match it (`text.py`), and the
check of a project or chapter that reports both (`POST /workflow/consistency-check`)."""
