"""HTML extraction against the pages news sites save: how much article is kept, how much furniture dropped.

    python -m eval.html_extraction [--pages tests/fixtures/news_pages]   (needs the [compare] extra)

The pages are the test fixtures: 5 self-written articles, each saved in 4 layouts (a
WordPress theme, a newsroom CMS with cookie banner, ads and paywall prompt, an AMP page, a
table-and-font page of the 2000s), 20 pages; ``expected.json`` lists, per page, the
article's headline and paragraphs, its facts (byline, date, place, caption, "about the
author" note), the furniture strings on the page, and the true metadata. Three extractors,
each cleaned by the same line rules (``rag.ingest.cleaning``):

- previous: what ``rag`` used before trafilatura: BeautifulSoup, the ``<article>`` element
  (or ``<body>``) less nav, header, footer, aside, form and scripts;
- trafilatura: its main text alone, with the options rag uses;
- rag: ``rag.ingest.formats.read_html``: trafilatura's article, with the lines it drops
  inside the article (byline, dateline, captions) and an author note or copyright line
  after it kept.

For each: the share of article strings kept, of facts kept, of furniture strings dropped
(each string found whole in the cleaned text, up to whitespace), and of metadata fields
(title, author, date, outlet) right. Prints a table and writes JSON
(``eval-results/html_extraction.json``).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

from eval.results import write_json
from rag.errors import run_guarded
from rag.ingest.cleaning import clean, find_date

PAGES = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "news_pages"


def previous(html: str) -> dict:
    """The extractor rag used before: BeautifulSoup's text of the article element, meta tags for metadata."""
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(html, "html.parser")

    def meta(*names: str) -> str | None:
        for name in names:
            tag = soup.find("meta", attrs={"property": name}) or soup.find("meta", attrs={"name": name})
            if tag and tag.get("content"):
                return tag["content"].strip()
        return None

    title = meta("og:title") or (soup.title.get_text(strip=True) if soup.title else None)
    found = {"author": meta("author", "article:author"), "date": meta("article:published_time", "date", "pubdate"),
             "outlet": meta("og:site_name")}
    for tag in soup(["script", "style", "noscript", "nav", "header", "footer", "aside", "form", "svg"]):
        tag.decompose()
    root = soup.find("article") or soup.body or soup
    h1 = root.find("h1")
    cleaned = clean(root.get_text("\n", strip=False), h1.get_text(" ", strip=True) if h1 else title)
    return {"text": cleaned.text, "title": cleaned.title, "author": found["author"] or cleaned.author,
            "date": find_date([found["date"]]) if found["date"] else cleaned.date, "outlet": found["outlet"]}


def trafilatura_alone(html: str) -> dict:
    from rag.ingest.formats import extract

    found = extract(html)
    cleaned = clean(found.text or "", found.title)
    return {"text": cleaned.text, "title": found.title, "author": found.author, "date": found.date,
            "outlet": found.sitename}


def ours(html: str) -> dict:
    from rag.ingest.formats import read_html

    found = read_html(html, "page.html")
    doc = found[0] if found else None
    return {"text": doc.text if doc else "", "title": doc and doc.title, "author": doc and doc.author,
            "date": doc and doc.date, "outlet": doc and doc.outlet}


EXTRACTORS = {"previous": previous, "trafilatura": trafilatura_alone, "rag": ours}


def holds(text: str, phrase: str) -> bool:
    """Whether ``text`` holds ``phrase`` whole, up to whitespace (also what the fixture tests check)."""
    return " ".join(phrase.split()) in " ".join(text.split())


def score(extracted: dict, expected: dict) -> dict:
    text = extracted["text"]
    facts = expected["facts"]
    return {"article": statistics.mean(holds(text, s) for s in expected["article"]),
            "facts": statistics.mean(holds(text, s) for s in facts.values()),
            "facts_missed": [name for name, s in facts.items() if not holds(text, s)],
            "furniture_dropped": statistics.mean(not holds(text, s) for s in expected["furniture"]),
            "furniture_kept": [s for s in expected["furniture"] if holds(text, s)],
            "metadata": statistics.mean((extracted[k] or "")[:10 if k == "date" else None] == v
                                        for k, v in expected["metadata"].items())}


def run(pages: Path) -> dict:
    expected = json.loads((pages / "expected.json").read_text(encoding="utf-8"))
    result: dict = {"pages": len(expected), "per_page": {}, "summary": {}}
    for name, truth in expected.items():
        html = (pages / name).read_text(encoding="utf-8")
        result["per_page"][name] = {extractor: score(extract(html), truth) for extractor, extract in EXTRACTORS.items()}
    for extractor in EXTRACTORS:
        rows = [page[extractor] for page in result["per_page"].values()]
        result["summary"][extractor] = {key: statistics.mean(r[key] for r in rows)
                                        for key in ("article", "facts", "furniture_dropped", "metadata")}
    return result


def table(result: dict) -> str:
    lines = [f"{result['pages']} pages      article kept   facts kept   furniture dropped   metadata right"]
    for extractor, s in result["summary"].items():
        lines.append(f"  {extractor:<12} {100 * s['article']:10.1f} {100 * s['facts']:12.1f} "
                     f"{100 * s['furniture_dropped']:16.1f} {100 * s['metadata']:16.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=Path, default=PAGES)
    parser.add_argument("--out", type=Path, default=Path("eval-results/html_extraction.json"))
    args = parser.parse_args(argv)

    def go() -> None:
        result = run(args.pages)
        write_json(args.out, result)
        print(table(result))
        print(f"wrote {args.out}", file=sys.stderr)

    return run_guarded(go)


if __name__ == "__main__":
    raise SystemExit(main())
