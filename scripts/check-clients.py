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


EMPTY_CHANGES = re.compile(rb"<changes\s*/>|<changes>\s*</changes>")
# A change entry that only stands in for an empty list (see parse_gateway).
STAND_IN = b'<changes><change url="http://stand-in.invalid/full_change.xml" hash="0"/></changes>'


def parse_gateway(path, data):
    """Problems python-idosell finds in a gateway.

    python-idosell declares full/changes as a required list, and pydantic-xml reads an empty
    wrapped list as a missing field, so it refuses every gateway without change files, IdoSell's
    own included, however the empty element is written. That one refusal is reported as a note;
    the same document is then parsed again with one stand-in change entry, so every other field
    is still checked."""
    try:
        Gateway.from_xml(data)
        return []
    except Exception as e:  # pydantic's ValidationError and XML syntax errors
        first = " ".join(str(e).split())
    if EMPTY_CHANGES.search(data) and "full.changes" in first:
        print(f"{path}: note: python-idosell cannot represent an empty <changes/>; "
              "checked with a stand-in change entry", file=sys.stderr)
        try:
            Gateway.from_xml(EMPTY_CHANGES.sub(STAND_IN, data, count=1))
            return []
        except Exception as e:
            return ["python-idosell: " + " ".join(str(e).split())]
    return ["python-idosell: " + first]


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
        if not os.path.isfile(path):
            print(f"{path}: no such file")
            failures += 1
            continue
        # xmlschema resolves a relative path against the schema's directory, not ours.
        problems = [
            f"xmlschema: {e.reason} (at {e.path})"
            for e in loaded[kind].iter_errors(os.path.abspath(path))
        ][:20]
        if kind == "gateway":
            with open(path, "rb") as f:
                problems += parse_gateway(path, f.read())
        for p in problems:
            print(f"{path}: {p}")
        failures += bool(problems)
    if failures:
        print(f"{failures} of {len(argv)} file(s) failed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
