"""Ingestion: documents in, clean titled chunks out.

Retrieval works on *chunks*, not files: a passage short enough for the encoder
(all-MiniLM-L6-v2 reads at most 256 word pieces) and for the generator's prompt,
yet long enough to hold an answer. Good chunks follow the document's own
structure (Lewis et al., 2020, "Retrieval-Augmented Generation for
Knowledge-Intensive NLP Tasks", split Wikipedia into 100-word passages; we split
on section boundaries first, then on paragraphs), and every chunk keeps where it
came from -- the document path, the section title and its anchor -- so that an
answer can cite it and a reader can follow the citation.

The pipeline is: read a file, find its sections (reStructuredText underlined
titles, Markdown ``#`` headings, or one section for plain text), turn markup into
plain text, pack paragraphs into chunks of at most ``max_words`` words, and drop
chunks whose normalised text was already seen (the Python docs repeat boiler-
plate, e.g. the same note in several modules).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

SUPPORTED_SUFFIXES = (".rst.txt", ".rst", ".md", ".markdown", ".txt")
MAX_WORDS = 150
MIN_WORDS = 20

_UNDERLINE = re.compile(r"^([=\-~^\"'*+#<>:._`])\1{2,}\s*$")
_LABEL = re.compile(r"^\.\. _([^:`]+):\s*$")
_DIRECTIVE = re.compile(r"^(\s*)\.\. ([\w:-]+)::\s?(.*)$")
_OPTION = re.compile(r"^\s+:[\w-]+:")
_FIELD = re.compile(r"^:[\w-]+:(\s|$)")
_MODULE = re.compile(r"^\.\. (?:current)?module:: (\S+)")
_OBJECT = re.compile(
    r"^( *)\.\. (function|method|class|decorator|exception|data|attribute|classmethod|"
    r"staticmethod|coroutinefunction|coroutinemethod|decoratormethod):: (.+)$"
)
_CONTAINERS = ("class", "exception")  # API entries whose nested entries belong to them
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")

# Directives whose whole block carries no prose worth retrieving.
_DROPPED = {
    "index", "moduleauthor", "sectionauthor", "testsetup", "testcleanup", "toctree",
    "tabularcolumns", "highlight", "contents", "include", "literalinclude", "image",
    "figure", "raw", "only", "currentmodule", "module", "program", "sectnum",
}  # fmt: skip
_ADMONITIONS = {
    "note": "Note:",
    "warning": "Warning:",
    "seealso": "See also:",
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
    "deprecated-removed": "Deprecated since version",
    "impl-detail": "CPython implementation detail:",
    "important": "Important:",
    "tip": "Tip:",
    "hint": "Hint:",
    "caution": "Caution:",
    "attention": "Attention:",
}

_ROLE = re.compile(r":[\w:.-]+:`([^`]*)`")
_TARGET = re.compile(r"^(.*?)\s*<[^>]+>$", re.DOTALL)
_LINK = re.compile(r"`([^`<]+?)\s*<[^>]+>`__?")
_REFERENCE = re.compile(r"`([^`]+)`__?")
_LITERAL = re.compile(r"``([^`]+)``")
_STRONG = re.compile(r"\*\*([^*]+)\*\*")
_EMPHASIS = re.compile(r"(?<![\w*])\*([^*\s][^*]*)\*(?![\w*])")
_SUBSTITUTION = re.compile(r"\|(\w+)\|")
_MD_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")
_MD_CODE = re.compile(r"`([^`]+)`")


@dataclass(frozen=True)
class Document:
    """One source file: ``doc_id`` is its path relative to the corpus root."""

    doc_id: str
    text: str
    kind: str  # "rst", "markdown" or "text"


@dataclass(frozen=True)
class Section:
    """A titled part of a document, with the anchor a link to it would use."""

    title: str
    anchor: str
    body: str


@dataclass(frozen=True)
class Chunk:
    """A retrievable passage and where it came from.

    The chunker makes chunks without an id; the index (SQLite, Milvus) gives each
    stored chunk its ``chunk_id``, the key of its vector and of every hit.
    """

    doc_id: str
    anchor: str
    title: str
    text: str
    chunk_id: int | None = field(default=None, kw_only=True)  # None until stored

    @property
    def path(self) -> str:
        """The source path relative to the corpus root (e.g. ``library/functools.rst``)."""
        return self.doc_id

    @property
    def fingerprint(self) -> str:
        """SHA-1 of the lower-cased, whitespace-collapsed text (for deduplication)."""
        return hashlib.sha1(" ".join(self.text.lower().split()).encode()).hexdigest()

    def embedding_text(self) -> str:
        """What the encoder and BM25 see: the title gives a passage its context."""
        return f"{self.title}\n{self.text}"


def document_id(path: Path, root: Path) -> str:
    """``library/functools.rst.txt`` -> ``library/functools.rst`` (Sphinx's source name)."""
    relative = path.relative_to(root).as_posix()
    return relative[: -len(".txt")] if relative.endswith(".rst.txt") else relative


def kind_of(name: str) -> str:
    """The markup of a file from its name."""
    if name.endswith((".rst.txt", ".rst")):
        return "rst"
    if name.endswith((".md", ".markdown")):
        return "markdown"
    return "text"


def discover(root: Path, suffixes: Iterable[str] = SUPPORTED_SUFFIXES) -> list[Path]:
    """Every supported, non-hidden file under ``root``, in a stable order."""
    suffixes = tuple(suffixes)
    return sorted(
        path
        for path in root.rglob("*")
        if path.is_file()
        and path.name.endswith(suffixes)
        and not any(part.startswith(".") for part in path.relative_to(root).parts)
    )


def read_document(path: Path, root: Path) -> Document:
    """Read one file (undecodable bytes become U+FFFD rather than an error)."""
    doc_id = document_id(path, root)
    return Document(doc_id, path.read_text(encoding="utf-8", errors="replace"), kind_of(doc_id))


def slugify(title: str) -> str:
    """Sphinx-style anchor: lower case, runs of other characters become ``-``."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def clean_inline(text: str, kind: str = "rst") -> str:
    """Inline markup to plain text (roles, literals, links, emphasis)."""
    if kind == "markdown":
        text = _MD_LINK.sub(r"\1", text)
        text = _MD_CODE.sub(r"\1", text)
    else:
        text = _ROLE.sub(lambda m: _role_text(m.group(1)), text)
        text = _LINK.sub(r"\1", text)
        text = _LITERAL.sub(r"\1", text)
        text = _REFERENCE.sub(r"\1", text)
        text = _SUBSTITUTION.sub(r"\1", text)
        text = text.replace(" --- ", " — ")
    text = _STRONG.sub(r"\1", text)
    return _EMPHASIS.sub(r"\1", text)


def _role_text(content: str) -> str:
    target = _TARGET.match(content)
    shown = (target.group(1) if target else content).lstrip("!")
    return shown[1:].rpartition(".")[2] if shown.startswith("~") else shown


def split_sections(document: Document) -> list[Section]:
    """The document's sections in order (text before the first title is its own section)."""
    if document.kind == "rst":
        return _rst_sections(document)
    if document.kind == "markdown":
        return _markdown_sections(document)
    title = Path(document.doc_id).stem
    return [Section(title, "", document.text)]


def _is_title(lines: list[str], i: int) -> bool:
    title = lines[i].rstrip()
    if not title.strip() or title.startswith((" ", "\t", "..")) or i + 1 >= len(lines):
        return False
    underline = lines[i + 1].rstrip()
    return bool(_UNDERLINE.match(underline)) and len(underline) >= len(title.strip())


def _rst_sections(document: Document) -> list[Section]:
    """Titles and API entries (``.. function:: name(...)``, nested methods too) start sections.

    An API entry's title is its signature, with the alternatives that follow it
    on continuation lines joined by ``" / "`` (``lru_cache(user_function) /
    lru_cache(maxsize=128, typed=False)``); its anchor is Sphinx's id. A method
    nested in ``.. class:: Counter`` is titled ``Counter.most_common([n])``, so
    it is found, and named in an answer, on its own.
    """
    lines = document.text.splitlines()
    sections: list[Section] = []
    title, anchor, body, label, module, container = Path(document.doc_id).stem, "", [], "", "", ""
    i = 0
    while i < len(lines):
        line = lines[i]
        if label_match := _LABEL.match(line):
            label = label_match.group(1).strip()
        if module_match := _MODULE.match(line):
            module = module_match.group(1).strip()
        obj = _OBJECT.match(line)
        if _is_title(lines, i) or obj:
            if body and _UNDERLINE.match(body[-1].rstrip()):
                body.pop()  # the overline of an over-and-underlined title
            sections.append(Section(title, anchor, "\n".join(body)))
            if obj:
                indent, kind, signature = obj.groups()
                signatures, i = _signatures(lines, i, signature)
                if indent:
                    signatures = [_qualified(s, container) for s in signatures]
                else:
                    container = _object_name(signature) if kind in _CONTAINERS else ""
                title, anchor = " / ".join(signatures), _object_anchor(signatures[0], module)
            else:
                title, container = clean_inline(line.strip()), ""
                anchor = label or slugify(title)
                i += 2
            label, body = "", []
            continue
        body.append(line)
        i += 1
    sections.append(Section(title, anchor, "\n".join(body)))
    return [s for s in sections if s.body.strip()]


def _signatures(lines: list[str], i: int, first: str) -> tuple[list[str], int]:
    """A directive's signature and those on its continuation lines; and the line after them."""
    signatures, column = [first.strip()], lines[i].index("::") + 3
    i += 1
    while i < len(lines) and lines[i].strip() and not lines[i].lstrip().startswith(":"):
        if len(lines[i]) - len(lines[i].lstrip()) < column - 1:
            break
        signatures.append(lines[i].strip())
        i += 1
    return signatures, i


def _object_name(signature: str) -> str:
    """``Counter([iterable-or-mapping])`` -> ``Counter``."""
    return re.split(r"[\s(\[]", signature.strip(), maxsplit=1)[0]


def _qualified(signature: str, container: str) -> str:
    """A nested entry's signature with its class in front: ``Counter.most_common([n])``."""
    if not container or _object_name(signature).startswith(f"{container}."):
        return signature
    return f"{container}.{signature}"


def _object_anchor(signature: str, module: str) -> str:
    """Sphinx's id of an API entry: ``cache(user_function)`` in functools is ``functools.cache``."""
    name = _object_name(signature)
    return name if not module or name.startswith(f"{module}.") else f"{module}.{name}"


def _markdown_sections(document: Document) -> list[Section]:
    sections: list[Section] = []
    title, anchor, body, in_code = Path(document.doc_id).stem, "", [], False
    for line in document.text.splitlines():
        if line.lstrip().startswith("```"):
            in_code = not in_code
            continue
        heading = None if in_code else _MD_HEADING.match(line)
        if heading:
            sections.append(Section(title, anchor, "\n".join(body)))
            title = clean_inline(heading.group(2), "markdown")
            anchor, body = slugify(title), []
        else:
            body.append(line)
    sections.append(Section(title, anchor, "\n".join(body)))
    return sections


def clean_body(body: str, kind: str) -> str:
    """A section's markup to plain paragraphs separated by blank lines."""
    if kind == "markdown":
        return clean_inline(body, "markdown")
    if kind == "text":
        return body
    return _clean_rst(body)


def _clean_rst(body: str) -> str:
    out: list[str] = []
    skip_indent: int | None = None  # inside a dropped block deeper than this
    in_options = False  # the ``:option: value`` lines right after a directive
    for line in body.splitlines():
        indent = len(line) - len(line.lstrip())
        if skip_indent is not None and (not line.strip() or indent > skip_indent):
            continue
        skip_indent = None
        if in_options and _OPTION.match(line):
            continue
        in_options = False
        directive = _DIRECTIVE.match(line)
        if directive:
            name, argument = directive.group(2), directive.group(3).strip()
            if name in _DROPPED:
                skip_indent = indent
                continue
            prefix = _ADMONITIONS.get(name)
            shown = f"{prefix} {argument}".strip() if prefix else argument
            if shown:
                out.append(" " * indent + shown)
            in_options = True
            continue
        if line.lstrip().startswith(".."):
            skip_indent = indent  # a comment or a link target, and its block
            continue
        if _UNDERLINE.match(line.strip()) or _FIELD.match(line):
            continue  # a transition (a line of dashes) or a file-wide field
        out.append(_drop_literal_marker(line.rstrip()))
    return clean_inline("\n".join(out))  # roles may span lines


def _drop_literal_marker(line: str) -> str:
    """``Example::`` introduces a code block: keep ``Example:``; a lone ``::`` goes."""
    if not line.endswith("::"):
        return line
    stem = line[:-2]
    return stem.rstrip() if stem.endswith(" ") or not stem.strip() else stem + ":"


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks, each collapsed to one line of words."""
    blocks = re.split(r"\n\s*\n", text)
    return [" ".join(block.split()) for block in blocks if block.strip()]


def pack(blocks: list[str], max_words: int = MAX_WORDS) -> list[str]:
    """Greedily join paragraphs into passages of at most ``max_words`` words.

    A paragraph longer than ``max_words`` is cut into ``max_words`` pieces; a
    last passage shorter than ``MIN_WORDS`` joins the one before it.
    """
    passages, current = [], []
    for block in blocks:
        words = block.split()
        for start in range(0, len(words), max_words):
            piece = words[start : start + max_words]
            if current and len(current) + len(piece) > max_words:
                passages.append(" ".join(current))
                current = []
            current.extend(piece)
    if current and passages and len(current) < MIN_WORDS:
        passages[-1] += " " + " ".join(current)
    elif current:
        passages.append(" ".join(current))
    return passages


def chunk_document(document: Document, max_words: int = MAX_WORDS) -> list[Chunk]:
    """Section-aware chunks of one document; titles read ``Document > Section``.

    A document with no text (a title alone) has no chunks.
    """
    sections = split_sections(document)
    if not sections:
        return []
    doc_title = next((s.title for s in sections if s.anchor), sections[0].title)
    chunks = []
    for section in sections:
        title = section.title if section.title == doc_title else f"{doc_title} > {section.title}"
        for passage in pack(paragraphs(clean_body(section.body, document.kind)), max_words):
            chunks.append(Chunk(document.doc_id, section.anchor, title, passage))
    return chunks


def deduplicate(chunks: Iterable[Chunk], seen: set[str] | None = None) -> Iterator[Chunk]:
    """Drop chunks whose normalised text is in ``seen`` (updated as we go)."""
    seen = set() if seen is None else seen
    for chunk in chunks:
        if chunk.fingerprint not in seen:
            seen.add(chunk.fingerprint)
            yield chunk
