"""Story workflows: a scene's text made into a storyboard, a whole chapter generated (scenes,
panels, images) as one job group, and what a project should do next."""
