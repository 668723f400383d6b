"""``pixelcnn zoo``: the trained models that ship with the package, and their cards."""

from __future__ import annotations

import json

from .. import zoo
from .errors import UsageError
from .flags import add_command

EXAMPLES = """
  pixelcnn zoo                                  # the entries with their test NLL
  pixelcnn zoo mnist5k                          # one card: data, command, commit, machine, numbers
  pixelcnn zoo mnist5k --json                   # the card as JSON
  pixelcnn zoo --markdown                       # every card as Markdown: the docs page docs/zoo.md
  pixelcnn sample zoo:mnist5k --per-class 8 --out samples.png   # any RUN may be zoo:NAME"""


def add_parsers(sub) -> None:
    parser = add_command(
        sub, "zoo", "list the trained models shipped with pixelcnn (zoo:NAME), or print one's card", EXAMPLES
    )
    parser.add_argument("name", nargs="?", metavar="NAME", help="an entry: print its card (default: list them all)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument("--markdown", action="store_true", help="print every card as the docs page docs/zoo.md")
    parser.set_defaults(handler=cmd_zoo)


def cmd_zoo(args) -> str:
    if args.markdown:
        return zoo.render_markdown()
    if args.name is not None:
        try:
            card = zoo.card(args.name)
        except ValueError as err:
            raise UsageError(str(err)) from None
        return json.dumps(card, indent=2) if args.json else zoo.render_card(args.name)
    rows = zoo.summary_table()
    if args.json:
        return json.dumps(rows, indent=2)
    lines = [f"{'NAME':<16} {'DATA':<14} {'TEST NLL (nats)':>18} {'BITS/DIM':>9} {'PARAMS':>10} {'MB':>6}  WHAT"]
    for row in rows:
        nll = f"{row['nll_nats']:.2f} +- {row['nll_nats_stderr']:.2f}"
        lines.append(
            f"{row['name']:<16} {row['data']:<14} {nll:>18} {row['bits_per_dim']:>9.4f} "
            f"{row['parameters']:>10,} {row['size_bytes'] / 1e6:>6.2f}  {row['summary']}"
        )
    lines.append(
        f"{len(rows)} models, {zoo.size_bytes() / 1e6:.1f} MB in all; use one as RUN: zoo:NAME "
        f"(pixelcnn zoo NAME prints its card)"
    )
    return "\n".join(lines)
