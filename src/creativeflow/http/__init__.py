"""HTTP plumbing shared by every router: middleware, problem+json, pagination, auth dependencies."""
