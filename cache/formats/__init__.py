"""Feed formats, one module each, turning a retailer's file into rows of one feed kind.

nearcart's own CSV and JSON Lines, and the formats retailers already have (Google local
inventory, Google product feed, Business Profile sheets, French Excel CSV: retailer.py).
Adding a format: a module here with a reader class (the shape `base.FormatReader` describes),
its name in `cache.feed_reader.FORMATS`, and how to recognise it in `detect.py`, the one
place that tells formats apart.
"""
