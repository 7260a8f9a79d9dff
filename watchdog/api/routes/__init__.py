"""The API's routes, one file per concern."""
