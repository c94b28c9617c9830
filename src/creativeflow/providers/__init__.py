"""AI text and image providers behind one registry (DESIGN.md "Engines")."""
