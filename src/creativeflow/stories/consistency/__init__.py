"""Character consistency: how far a panel's image has drifted from the character's references."""
