"""The model: where it comes from, its profile (classes, input, preprocessing), loading and running it."""
