"""The prompt builder: what a panel's image is asked for, and where each part comes from."""
