"""Items of an RSS 2.0 feed with Google's `g:` elements, read with defusedxml and never held whole.

Google documents its XML feeds as RSS 2.0 (`<rss><channel><item><g:id>…`); Atom `<entry>`
items are read alike. defusedxml refuses entity declarations and external references, so a
"billion laughs" file or one pulling in local files stops with a clear error instead of
expanding. Each item's fields are its child elements by local name (`g:store_code` and
`store_code` alike), spelled as `header_name` spells TSV headers.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import IO, Any
from xml.sax import SAXException, SAXParseException
from xml.sax.handler import ContentHandler, feature_namespaces

from defusedxml import DefusedXmlException
from defusedxml.expatreader import DefusedExpatParser

from cache.feed_errors import FeedError
from cache.formats.base import Problem
from cache.formats.delimited import header_name
from cache.formats.stream import BLOCK

ROOTS = ("rss", "feed")
_ITEMS = ("item", "entry")
_STREAM_ERRORS = (OSError, EOFError)


class _Items(ContentHandler):
    """Collects finished items as (line of `<item>`, {field: text}) or (line, problem)."""

    def __init__(self, max_item: int) -> None:
        super().__init__()
        self.max_item = max_item
        self.root: str | None = None
        self.done: list[tuple[int, dict[str, str] | Problem]] = []
        self._locator: Any = None
        self._depth = 0
        self._item: dict[str, str] | None = None
        self._item_depth = 0
        self.line = 0
        self._size = 0
        self._field: str | None = None
        self._text: list[str] = []

    def setDocumentLocator(self, locator: Any) -> None:  # noqa: N802 (SAX's name)
        self._locator = locator

    def startElementNS(self, name: tuple[str | None, str], qname: str | None, attrs: Any) -> None:  # noqa: N802
        self._depth += 1
        local = name[1]
        if self.root is None:
            self.root = local
        if self._item is None:
            if local in _ITEMS:
                self._item, self._item_depth, self._size = {}, self._depth, 0
                self.line = self._locator.getLineNumber() if self._locator is not None else 0
        elif self._depth == self._item_depth + 1:
            self._field, self._text = header_name(local), []

    def characters(self, content: str) -> None:
        if self._field is not None and self._size <= self.max_item:
            self._size += len(content)
            self._text.append(content)

    def endElementNS(self, name: tuple[str | None, str], qname: str | None) -> None:  # noqa: N802
        if self._item is not None:
            if self._depth == self._item_depth + 1 and self._field is not None:
                self._item.setdefault(self._field, "".join(self._text).strip())
                self._field = None
            elif self._depth == self._item_depth:
                found: dict[str, str] | Problem = self._item
                if self._size > self.max_item:
                    found = ("row", f"item longer than {self.max_item:,} characters")
                self.done.append((self.line, found))
                self._item = None
        self._depth -= 1


class RssItems:
    """The items of one XML feed; the root element is checked on construction (FeedError if unusable)."""

    def __init__(self, stream: IO[bytes], name: str, max_item: int) -> None:
        self.name = name
        self._stream = stream
        self._handler = _Items(max_item)
        self._parser = DefusedExpatParser()
        self._parser.setFeature(feature_namespaces, True)
        self._parser.setContentHandler(self._handler)
        # feed() never calls setDocumentLocator (parse() would); the expat reader is its own locator.
        self._handler.setDocumentLocator(self._parser)
        self._ended = False
        # Damage after the root element is a problem of the rows from there on, not of the whole file.
        self._damage: BaseException | None = None
        try:
            while self._handler.root is None and not self._ended:
                self._feed()
        except (SAXException, DefusedXmlException, *_STREAM_ERRORS) as exc:
            if self._handler.root is None or isinstance(exc, DefusedXmlException):
                raise FeedError(f"{name}: {_describe(exc)}") from exc
            self._damage = exc
        if self._handler.root not in ROOTS:
            raise FeedError(f"{name}: XML root <{self._handler.root}> is not an RSS 2.0 feed (<rss> with <item>s)")

    def _feed(self) -> None:
        chunk = self._stream.read(BLOCK)
        if chunk:
            self._parser.feed(chunk)
        else:
            self._ended = True
            self._parser.close()

    def __iter__(self) -> Iterator[tuple[int, dict[str, str] | Problem]]:
        done = self._handler.done
        while True:
            yield from done
            done.clear()
            if self._damage is None and not self._ended:
                try:
                    self._feed()
                except (SAXException, DefusedXmlException, *_STREAM_ERRORS) as exc:
                    self._damage = exc
                continue
            if self._damage is not None:
                line = self._handler.line
                if isinstance(self._damage, SAXParseException):
                    line = self._damage.getLineNumber() or line
                yield line, ("file", f"{_describe(self._damage)}; the rest is not read")
            return


def _describe(exc: BaseException) -> str:
    if isinstance(exc, DefusedXmlException):
        return f"XML refused: it declares entities or external references ({exc}); they are never expanded"
    if isinstance(exc, SAXException):
        return f"not well-formed XML: {exc}"
    return f"cannot read: {exc}"
