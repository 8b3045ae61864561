#!/usr/bin/env python3
"""Check IOF files the way third-party clients read them.

Usage: check-clients.py [--schemas DIR] FILE...

Every file is validated with xmlschema, a second XSD engine beside xmllint, against the official
schema its name calls for (full.xml, light.xml, gateway.xml, full_change<ts>.xml, ...), offline:
the schemas' remote imports are mapped onto the local copies through the XML catalog beside them.
Every gateway is also parsed with python-idosell's gateway model, as an importer built on it
would. One line per problem on stdout; exit status 1 when any file fails, 2 when a checker is
missing or a file cannot be classified. Everything runs in this one process, so callers should
pass a whole batch at once.
"""

import os
import re
import sys
import xml.etree.ElementTree as ET

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMAS = os.path.join(HERE, "..", "fixtures", "iof", "xsd")
KINDS = (
    "gateway", "full", "light", "categories", "sizes", "producers", "units",
    "parameters", "series", "stocks", "warranties", "preset",
)


def fail_setup(message):
    print(f"check-clients: {message}", file=sys.stderr)
    sys.exit(2)


try:
    import xmlschema
except ImportError:
    fail_setup("the Python package xmlschema is not installed (pip install xmlschema)")
try:
    from idosell.iof.gateway import Gateway
except ImportError:
    fail_setup("the Python package python-idosell is not installed (pip install python-idosell)")


def kind_of(path):
    name = os.path.basename(path)
    stem = re.sub(r"\.xml$", "", name)
    if re.fullmatch(r"full_change\d{4}-\d\d-\d\dT\d\d-\d\d-\d\d", stem):
        return "full_change"
    return stem if stem in KINDS else None


def catalog_mapper(schemas):
    """A uri_mapper from the OASIS catalog's system entries (remote import -> local file)."""
    ns = {"c": "urn:oasis:names:tc:entity:xmlns:xml:catalog"}
    root = ET.parse(os.path.join(schemas, "catalog.xml")).getroot()
    table = {}
    for entry in root.findall("c:system", ns):
        table[entry.get("systemId")] = os.path.join(schemas, entry.get("uri"))

    def mapper(uri):
        return table.get(uri, uri)

    return mapper


def main(argv):
    schemas = DEFAULT_SCHEMAS
    if len(argv) >= 2 and argv[0] == "--schemas":
        schemas, argv = argv[1], argv[2:]
    if not argv:
        fail_setup("no files given")
    mapper = catalog_mapper(schemas)
    loaded = {}
    failures = 0
    for path in argv:
        kind = kind_of(path)
        if kind is None:
            fail_setup(f"{path}: cannot tell which schema applies from the file name")
        if kind not in loaded:
            loaded[kind] = xmlschema.XMLSchema(
                os.path.join(schemas, f"{kind}.xsd"), uri_mapper=mapper, allow="sandbox"
            )
        problems = [
            f"xmlschema: {e.reason} (at {e.path})"
            for e in loaded[kind].iter_errors(path)
        ][:20]
        if kind == "gateway":
            try:
                with open(path, "rb") as f:
                    Gateway.from_xml(f.read())
            except Exception as e:  # pydantic's ValidationError and XML syntax errors
                problems.append("python-idosell: " + " ".join(str(e).split()))
        for p in problems:
            print(f"{path}: {p}")
        failures += bool(problems)
    if failures:
        print(f"{failures} of {len(argv)} file(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
