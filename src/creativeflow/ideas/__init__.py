"""Content ideas (creatorvault.md): each creator's private backlog of ideas."""
