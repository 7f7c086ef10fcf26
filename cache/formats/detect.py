"""Which format a feed is in, from its first bytes: the one place formats are told apart.

XML root, JSON, header words, separator: file names lie (a `.csv` that Excel wrote with
semicolons, a `.txt` from Google's templates), so only the content decides; `--format`
overrides it. Gzip is known by its magic bytes (cache/formats/stream.py), not by `.gz`.
"""

from __future__ import annotations

from cache.feed_errors import FeedError
from cache.formats.delimited import Decoder, header_name, sniff_delimiter

_BOMS = {b"\xff\xfe": "UTF-16", b"\xfe\xff": "UTF-16"}
# Words only a Google local inventory / Business Profile sheet has in its header.
_INVENTORY = {"store code", "availability", "pickup method", "sale price"}
_PROFILE = {"business name", "locality", "address line 1"}


def detect(head: bytes, kind: str, name: str) -> str:
    """A name in cache.feed_reader.FORMATS for a file of `kind` starting with `head` (gzip undone).

    FeedError if the file is in no format nearcart reads, saying what it seems to be.
    """
    text = head.removeprefix(b"\xef\xbb\xbf").lstrip()
    if not text:
        return "csv"  # the CSV reader says "empty file"
    if text.startswith((b"PK\x03\x04", b"\xd0\xcf\x11\xe0")):
        raise FeedError(f"{name}: an Excel workbook, not text: save it as CSV (semicolons are fine)")
    if head[:2] in _BOMS:
        raise FeedError(f"{name}: UTF-16 text: save it as UTF-8 or Windows-1252")
    if text.startswith(b"<"):
        if kind == "offers":
            return "google-inventory-xml"
        if kind == "products":
            return "google-products"
        raise FeedError(f"{name}: XML is read for Google local inventories (offers) and product feeds (products)")
    if text.startswith(b"{"):
        return "jsonl"
    first = head.split(b"\n", 1)[0].rstrip(b"\r")
    try:
        header = Decoder()(first)
    except UnicodeDecodeError:
        header = first.decode("latin-1")  # only to read the header's words here
    delimiter = sniff_delimiter(header)
    names = {header_name(part.strip('"')) for part in header.split(delimiter)}
    if kind == "products":
        return "google-products"
    if kind == "stores" and "store code" in names and names & _PROFILE:
        return "gbp"
    if kind == "offers" and "store code" in names and names & _INVENTORY:
        return "google-inventory"
    if delimiter == ";":
        return "excel-fr"
    if delimiter == "\t":
        raise FeedError(f"{name}: tab-separated, but its header is not a Google {_GOOGLE[kind]}'s; nearcart's own"
                        " columns are read separated by , (or ; from Excel)")
    return "csv"


_GOOGLE = {"offers": "local product inventory", "stores": "Business Profile store sheet",
           "retailers": "feed", "products": "product feed"}
