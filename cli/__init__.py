"""The ``engage`` command line: parsing and rich rendering only."""
