"""Build the near-duplicate labelled set (issue 19): `tests/data/stories/written.txt` (articles we wrote
by hand) plus, for each original, four reprints made by the edits syndicating outlets make, into
`tests/data/stories/labelled.jsonl`.

Reprints of one original share its story; rewrites, follow-ups and same-style ("template") stories
are stories of their own. Edits are drawn with a fixed seed, so the file is reproducible:

    python -m research.stories_data            # rewrites tests/data/stories/labelled.jsonl
"""

from __future__ import annotations

import argparse
import json
import random
import re
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
WRITTEN = ROOT / "tests" / "data" / "stories" / "written.txt"
LABELLED = ROOT / "tests" / "data" / "stories" / "labelled.jsonl"
REPRINTS_PER_ORIGINAL = 4
SEED = 19


@dataclass(frozen=True)
class Outlet:
    """A reprinting outlet's house habits: what it puts before and after a wire story."""

    name: str
    before: str  # "" or a line put above the first paragraph
    after: str  # "" or a closing line
    dateline: bool  # whether it prefixes the first paragraph with its own credit


OUTLETS = (
    Outlet("Daily Meridian", "", "Published from an agency feed; the Daily Meridian newsroom changed only the headline.", False),
    Outlet("Lakeside Times", "", "© 2025 Lakeside Times Media. Reuse of this article needs our written consent.", True),
    Outlet("Eastport Examiner", "", "Follow the Examiner for more business and world news, and send tips to our newsroom.", True),
    Outlet("Riverbend Online", "Listen to this article (3 min)", "Got a story? Riverbend Online wants to hear from you.", False),
    Outlet("Hilltop Chronicle", "Photo: file image, for illustration only.", "Additional reporting by Chronicle staff.", False),
    Outlet("National Wire Digest", "", "", True),
)

# What copy editors change in a reprint: house style, a synonym, a shorter phrase (no replacement holds
# a key, so a word is never swapped twice).
SWAPS = {
    "about": "around", "more than": "over", "said": "stated", "roughly": "approximately", "expected": "likely",
    "warned": "cautioned", "announced": "confirmed", "began": "started", "fell": "dropped",
    "rose": "climbed", "kilometres": "km", "dollars": "USD", "per cent": "percent", "people": "residents",
    "on Monday": "Monday", "on Tuesday": "Tuesday", "on Wednesday": "Wednesday", "on Thursday": "Thursday",
    "on Friday": "Friday", "on Saturday": "Saturday", "country's": "nation's", "also": "too",
    "will": "would", "new": "newly built", "company": "firm", "government": "administration",
}
US_SPELLING = {
    "harbour": "harbor", "harbours": "harbors", "Harbour": "Harbor", "labour": "labor", "centre": "center", "defence": "defense",
    "kilometres": "kilometers", "metres": "meters", "neighbours": "neighbors", "programme": "program",
    "organisation": "organization", "smouldering": "smoldering", "criticised": "criticized",
    "artefacts": "artifacts", "travelling": "traveling", "colour": "color", "favour": "favor",
}


@dataclass(frozen=True)
class Written:
    """One hand-written article of `written.txt`."""

    id: str
    kind: str
    source: str
    date: str
    title: str
    alt_titles: tuple[str, ...]
    paragraphs: tuple[str, ...]

    @property
    def event(self) -> str:
        return self.id.split("/")[0]


def read_written(path: Path = WRITTEN) -> list[Written]:
    """Parse `### ID`, header lines, a blank line, then paragraphs; `#` lines outside records are comments."""
    records = [r for r in re.split(r"^### ", path.read_text(encoding="utf-8"), flags=re.M)[1:]]
    out = []
    for record in records:
        head, _, body = record.partition("\n\n")
        lines = head.splitlines()
        fields = dict(line.split(": ", 1) for line in lines[1:])
        paragraphs = tuple(p.strip() for p in body.strip().split("\n\n") if p.strip())
        alt = tuple(t.strip() for t in fields.get("alt_titles", "").split("|") if t.strip())
        out.append(Written(lines[0].strip(), fields["kind"], fields["source"], fields["date"], fields["title"],
                           alt, paragraphs))
    return out


def swap_words(paragraphs: list[str], rng: random.Random, n: int) -> tuple[list[str], int]:
    """Replace `n` random occurrences of words a copy editor would change; returns how many were."""
    done = 0
    for _ in range(n * 4):
        if done >= n:
            break
        i = rng.randrange(len(paragraphs))
        options = [w for w in SWAPS if re.search(rf"\b{re.escape(w)}\b", paragraphs[i])]
        if not options:
            continue
        word = rng.choice(options)
        paragraphs[i] = re.sub(rf"\b{re.escape(word)}\b", SWAPS[word], paragraphs[i], count=1)
        done += 1
    return paragraphs, done


def us_spelling(paragraphs: list[str]) -> list[str]:
    out = []
    for p in paragraphs:
        for uk, us in US_SPELLING.items():
            p = re.sub(rf"\b{uk}\b", us, p)
        out.append(p)
    return out


def drop_sentence(paragraphs: list[str], rng: random.Random) -> list[str]:
    """Cut one sentence out of a paragraph that has several (editors trim for space)."""
    candidates = [i for i, p in enumerate(paragraphs) if len(re.findall(r"[.!?][\"”]? ", p)) >= 1]
    if not candidates:
        return paragraphs
    i = rng.choice(candidates)
    sentences = re.split(r"(?<=[.!?][\"”]) |(?<=[.!?]) ", paragraphs[i])
    del sentences[rng.randrange(len(sentences))]
    paragraphs[i] = " ".join(sentences)
    return paragraphs


def split_paragraph(paragraphs: list[str], rng: random.Random) -> list[str]:
    """Break one paragraph in two at a sentence end (short paragraphs for phones)."""
    candidates = [i for i, p in enumerate(paragraphs) if re.search(r"[.!?] [A-Z]", p)]
    if not candidates:
        return paragraphs
    i = rng.choice(candidates)
    first, rest = re.split(r"(?<=[.!?]) (?=[A-Z])", paragraphs[i], maxsplit=1)
    return paragraphs[:i] + [first, rest] + paragraphs[i + 1:]


def reprint(original: Written, number: int, outlet: Outlet, rng: random.Random, read_also: str) -> dict:
    """One outlet's copy of a wire story: the last of each original's reprints is cut heavily (the
    first half or so kept, as outlets short of space do), the others get one to three light edits."""
    paragraphs = list(original.paragraphs)
    edits: list[str] = []
    heavy = number == REPRINTS_PER_ORIGINAL
    if heavy:
        keep = max(2, round(len(paragraphs) * 0.55))
        paragraphs = paragraphs[:keep]
        edits.append(f"kept the first {keep} of {len(original.paragraphs)} paragraphs")
        paragraphs, n = swap_words(paragraphs, rng, rng.randint(3, 6))
        edits.append(f"swapped {n} words")
    else:
        light = ["trim_last", "swap", "us_spelling", "drop_sentence", "split", "read_also"]
        for edit in rng.sample(light, rng.randint(1, 3)):
            if edit == "trim_last":
                paragraphs = paragraphs[:-1]
                edits.append("dropped the last paragraph")
            elif edit == "swap":
                paragraphs, n = swap_words(paragraphs, rng, rng.randint(1, 2))
                edits.append(f"swapped {n} words")
            elif edit == "us_spelling":
                paragraphs = us_spelling(paragraphs)
                edits.append("US spelling")
            elif edit == "drop_sentence":
                paragraphs = drop_sentence(paragraphs, rng)
                edits.append("cut one sentence")
            elif edit == "split":
                paragraphs = split_paragraph(paragraphs, rng)
                edits.append("split a paragraph")
            else:
                paragraphs.insert(min(2, len(paragraphs)), f"Read also: {read_also}")
                edits.append("inserted a 'Read also' line")
    if outlet.dateline:
        paragraphs[0] = f"({outlet.name}) - {paragraphs[0]}"
        edits.append("outlet credit before the first paragraph")
    if outlet.before:
        paragraphs.insert(0, outlet.before)
        edits.append("outlet line above the story")
    if outlet.after:
        paragraphs.append(outlet.after)
        edits.append("outlet boilerplate at the end")
    titles = list(original.alt_titles) or [original.title]
    title = titles[(number - 1) % len(titles)] if number <= len(titles) else f"{original.title} | {outlet.name}"
    day = date.fromisoformat(original.date) + timedelta(days=number % 2)
    return {"id": f"{original.event}/reprint-{number}", "title": title, "date": day.isoformat(),
            "source": outlet.name, "text": "\n\n".join(paragraphs), "kind": "reprint", "event": original.event,
            "story": original.id, "edits": edits}


def build(written: list[Written], seed: int = SEED) -> list[dict]:
    """Every written article as itself, then each original's reprints (outlets rotate per event)."""
    rng = random.Random(seed)
    originals = [w for w in written if w.kind == "original"]
    rows = [{"id": w.id, "title": w.title, "date": w.date, "source": w.source, "text": "\n\n".join(w.paragraphs),
             "kind": w.kind, "event": w.event, "story": w.id, "edits": []} for w in written]
    for i, original in enumerate(originals):
        outlets = [OUTLETS[(i + j) % len(OUTLETS)] for j in range(REPRINTS_PER_ORIGINAL)]
        others = [o.title for o in originals if o is not original]
        for number, outlet in enumerate(outlets, 1):
            rows.append(reprint(original, number, outlet, rng, rng.choice(others)))
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=LABELLED)
    parser.add_argument("--seed", type=int, default=SEED)
    args = parser.parse_args()
    rows = build(read_written(), args.seed)
    with open(args.out, "w", encoding="utf-8") as fh:
        for row in rows:
            fh.write(json.dumps(row, ensure_ascii=False) + "\n")
    kinds: dict[str, int] = {}
    for row in rows:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    print(f"{len(rows)} articles -> {args.out}: {kinds}")


if __name__ == "__main__":
    main()
