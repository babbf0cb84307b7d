"""The queue edge: Dramatiq broker, middleware and thin actors that take ids."""
