"""One module per CLI command; each only parses, calls a library function and reports."""
