//! Texts in the profile's languages, and the `<description>` node built from them.

use super::Cx;
use crate::catalog::ArchivedProduct;
use crate::render::dicts::{first_text, text, ArchivedTexts};
use crate::render::xml::XmlBuf;
/// `<tag xml:lang="..">CDATA</tag>` lines for the profile's languages the texts have; with
/// `fallback`, the first language they have when none matches. Returns whether any was written.
pub(super) fn lang_texts(
    o: &mut Vec<u8>,
    cx: &Cx,
    texts: &ArchivedTexts,
    indent: &[u8],
    tag: &[u8],
    fallback: bool,
) -> bool {
    let mut wrote = false;
    for lang in cx.langs() {
        if let Some(t) = text(texts, lang) {
            lang_text(o, indent, tag, lang, t);
            wrote = true;
        }
    }
    if !wrote && fallback {
        if let Some((lang, t)) = first_text(texts) {
            lang_text(o, indent, tag, lang, t);
            wrote = true;
        }
    }
    wrote
}

pub(super) fn lang_text(o: &mut Vec<u8>, indent: &[u8], tag: &[u8], lang: &str, t: &str) {
    o.raw(indent);
    o.raw(b"<");
    o.raw(tag);
    o.raw(b" xml:lang=\"");
    o.escaped(lang);
    o.raw(b"\">");
    o.cdata(t);
    o.raw(b"</");
    o.raw(tag);
    o.raw(b">\n");
}

pub(super) fn description(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    let d = &p.description;
    let mark = o.len();
    o.raw(b"\t\t<description>\n");
    let body = o.len();
    lang_texts(o, cx, &d.name, b"\t\t\t", b"name", true);
    if let Some(version_name) = cx.pick(&d.version) {
        o.raw(b"\t\t\t<version");
        o.attr(b"name", version_name);
        o.raw(b">\n");
        lang_texts(o, cx, &d.version, b"\t\t\t\t", b"name", true);
        o.raw(b"\t\t\t</version>\n");
    }
    lang_texts(o, cx, &d.long_desc, b"\t\t\t", b"long_desc", false);
    lang_texts(o, cx, &d.short_desc, b"\t\t\t", b"short_desc", false);
    if o.len() == body {
        o.truncate(mark);
    } else {
        o.raw(b"\t\t</description>\n");
    }
}

#[cfg(test)]
mod tests {
    use super::super::testkit::*;

    #[test]
    fn texts_use_profile_languages_in_order_with_cdata() {
        let f = Fixture::new();
        let doc = render_full(&f, &retail_pl());
        let shirt = product_xml(&doc, 1001);
        assert_contains(
            shirt,
            "\t\t\t<name xml:lang=\"pol\"><![CDATA[Koszula męska „Zażółć” <b>&</b>]]></name>\n\
             \t\t\t<name xml:lang=\"eng\"><![CDATA[Men's shirt \"Classic\" & more]]></name>\n\
             \t\t\t<version name=\"niebieski \\ bawełna\">\n\
             \t\t\t\t<name xml:lang=\"pol\"><![CDATA[niebieski \\ bawełna]]></name>\n\
             \t\t\t\t<name xml:lang=\"eng\"><![CDATA[blue \\ cotton]]></name>\n\
             \t\t\t</version>\n",
        );
        // `]]>` inside a text is split across two CDATA sections.
        assert_contains(
            shirt,
            "<long_desc xml:lang=\"pol\"><![CDATA[<p>Opis z <b>HTML</b> &amp; znakami ąęł, a także ]]]]><![CDATA[> w środku.</p>]]></long_desc>",
        );
        let eng = render_full(&f, &wholesale_eur());
        let shirt = product_xml(&eng, 1001);
        assert!(!shirt.contains("xml:lang=\"pol\""), "{shirt}");
        assert_contains(shirt, "<version name=\"blue \\ cotton\">");
        // A name in none of the profile's languages falls back to the one the product has.
        assert_contains(
            product_xml(&eng, 1007),
            "<name xml:lang=\"ger\"><![CDATA[Montage-Service für Hemden]]></name>",
        );
        // ... but descriptions do not; a version only in Polish keeps its name.
        assert!(!product_xml(&eng, 1001).contains("Bawełniana"));
    }
}
