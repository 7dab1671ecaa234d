"""Finding solc and compiling the contracts, with a content-hash cache."""
