#!/usr/bin/env python3
"""Write a large full.xml in the dialect other B2B platforms export (for measuring
`iofd import`): IOF "2.6" label, language="en", prices in EUR with decimal commas, sizes
without ids, EAN and codes on <product>, dates as dd.mm.yyyy hh:mm:ss, category paths with
'/' or '\\', <description><description>, empty SRPs, some vat="0".

Deterministic: the same --products and --seed give the same bytes.

    scripts/third-party-feed.py --products 27000 --out /tmp/feed   # about 40 MB
"""

import argparse
import os
import random
from xml.sax.saxutils import escape, quoteattr

WORDS = (
    "enamel steel oak linen cotton glass clay copper bamboo wool ceramic cast iron "
    "garden kitchen office travel outdoor classic compact deluxe mini family"
).split()
KINDS = ["mug", "spade", "lamp", "towel", "bowl", "kettle", "basket", "shelf", "rug", "jar"]
PATHS = [
    "Home/Kitchen/Mugs",
    "Home/Kitchen/Pots",
    "Home/Bathroom",
    "Garden\\Tools",
    "Garden\\Furniture",
    "Office/Desks/Lamps",
    "Outdoor/Camping",
]


def money(rng, low, high):
    return f"{rng.uniform(low, high):.2f}".replace(".", ",")


def product(rng, pid):
    name = f"{rng.choice(WORDS).title()} {rng.choice(WORDS)} {rng.choice(KINDS)}"
    vat = rng.choice(["23", "23", "8", "0"])
    ean = f"590{rng.randrange(10**9, 10**10)}"
    code = f"SKU-{pid}"
    cat = rng.randrange(len(PATHS))
    net = rng.uniform(1, 400)
    out = [
        f' <product id="{pid}" vat="{vat}" code="{code}"'
        + (f' EAN="{ean}"' if rng.random() < 0.5 else "")
        + ">\n",
        f'  <producer id="{rng.randrange(1, 200)}" name="Maker {rng.randrange(1, 200)}"/>\n',
        f"  <category id=\"{100 + cat}\" name={quoteattr(PATHS[cat])}/>\n",
        "  <description>\n",
        f"   <name>{escape(name)}</name>\n",
        f'   <name xml:lang="de">{escape(name)} (DE)</name>\n',
        "   <description><![CDATA[<p>"
        + " ".join(rng.choice(WORDS) for _ in range(rng.randrange(40, 120)))
        + "</p>]]></description>\n",
        "  </description>\n",
        f'  <price net="{net:.2f}"/>\n'.replace(".", ","),
        '  <srp gross="" net=""/>\n' if rng.random() < 0.5 else "",
        "  <sizes>\n",
    ]
    for s in range(rng.choice([1, 1, 2, 3, 5])):
        out.append(
            f'   <size code="{code}-{s}" code_producer="{ean}{s}" weight="{rng.randrange(50, 5000)},{rng.randrange(10)}">\n'
        )
        if rng.random() < 0.3:
            out.append(f'    <price net="{money(rng, 1, 400)}"/>\n')
        for w in range(1, rng.choice([2, 3, 4])):
            out.append(
                f'    <stock id="{w}" quantity="{rng.randrange(0, 500)},{rng.randrange(10)}"/>\n'
            )
        out.append("   </size>\n")
    out.append("  </sizes>\n")
    out.append("  <images>\n   <large>\n")
    for i in range(rng.randrange(1, 4)):
        d, m, h, mi, sec = (
            rng.randrange(1, 29),
            rng.randrange(1, 13),
            rng.randrange(24),
            rng.randrange(60),
            rng.randrange(60),
        )
        when = f"{d:02}.{m:02}.2025 {h:02}:{mi:02}" + (f":{sec:02}" if i % 2 == 0 else "")
        out.append(
            f'    <image url="https://img.example.com/{pid}/{i}.jpg" date_changed="{when}"/>\n'
        )
    out.append("   </large>\n  </images>\n </product>\n")
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--products", type=int, default=27000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", required=True, help="directory to write full.xml into")
    args = ap.parse_args()
    rng = random.Random(args.seed)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "full.xml")
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        f.write('<?xml version="1.0" encoding="UTF-8"?>\n')
        f.write('<offer file_format="IOF" version="2.6" generated="14.06.2025 13:06:48">\n')
        f.write('<products language="en" currency="EUR">\n')
        for pid in range(1, args.products + 1):
            f.write(product(rng, pid))
        f.write("</products>\n</offer>\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    print(f"wrote {path}: {args.products} products, {os.path.getsize(path) / 1e6:.1f} MB")


if __name__ == "__main__":
    main()
