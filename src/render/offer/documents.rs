//! Whole-document tests: nodes that span several writers, the gateway, and schema validity.

use std::io;

use super::testkit::*;
use super::*;
use crate::catalog::sample::{sample_dictionaries, sample_products};
use crate::render::{Gateway, GatewayFile};
use crate::xsd::{validate, Schema};
#[test]
fn images_parameters_attachments_group_and_bundles() {
    let f = Fixture::new();
    let doc = render_full(&f, &retail_pl());
    let shirt = product_xml(&doc, 1001);
    assert_contains(
        shirt,
        "\t\t\t\t<image iaiext:priority=\"2\" url=\"https://hurtownia.example/img/1001_2.jpg?v=2&amp;size=large\" \
         hash=\"4c255061ccde0f7c04d21e79dc288874\" changed=\"2026-10-01 12:00:00\" width=\"1200\" height=\"800\"/>\n",
    );
    assert_contains(
        shirt,
        "\t\t\t\t<group_icon url=\"https://hurtownia.example/icons/group/1001.jpg\"/>\n\t\t\t</icons>\n",
    );
    assert_contains(
        shirt,
        "\t\t<parameters>\n\
         \t\t\t<parameter type=\"section\" id=\"10\" priority=\"0\" distinction=\"n\" group_distinction=\"n\" hide=\"n\" auction_template_hide=\"n\" name=\"Sekcja główna\"/>\n\
         \t\t\t<parameter type=\"parameter\" id=\"11\" priority=\"1\" distinction=\"n\" group_distinction=\"y\" hide=\"n\" auction_template_hide=\"n\" context_id=\"CONTEXT_COLOR\" name=\"Kolor\">\n\
         \t\t\t\t<value id=\"111\" priority=\"0\" name=\"niebieski\"/>\n\
         \t\t\t</parameter>\n",
    );
    assert_contains(
        shirt,
        "<value id=\"131\" priority=\"0\" context_id=\"CONTEXT_SEX_MAN\" name=\"mężczyzna\"/>",
    );
    assert_contains(
        shirt,
        "\t\t<group id=\"5\" first_product_id=\"1001\">\n\
         \t\t\t<group_by_parameter id=\"efac1b1fe38afd9a307b32a0c9f93ba1\">\n\
         \t\t\t\t<name xml:lang=\"pol\"><![CDATA[Kolor \\ Materiał]]></name>\n",
    );
    // Order of the official example: images, attachments, group, parameters, bundled.
    let at = |s: &str| shirt.find(s).unwrap_or_else(|| panic!("{s}"));
    assert!(at("<sizes") < at("<images>"));
    assert!(at("<images>") < at("<group "));
    assert!(at("<group ") < at("<parameters>"));

    let ebook = product_xml(&doc, 1003);
    assert_contains(ebook, "iaiext:context_id=\"CONTEXT_CONNECTOR\" name=\"Złącze\">\n\t\t\t\t<value id=\"141\" priority=\"0\" name=\"USB-C &lt;3.1&gt;\"/>");
    assert_contains(
        ebook,
        "\t\t\t<file version=\"full\" url=\"https://hurtownia.example/files/guide.pdf?a=1&amp;b=2\" priority=\"1\" \
         attachment_file_type=\"doc\" attachment_file_extension=\"pdf\" enable=\"ordered\" download_log=\"y\">\n\
         \t\t\t\t<name xml:lang=\"pol\"><![CDATA[Poradnik – pełna wersja]]></name>\n\
         \t\t\t\t<name xml:lang=\"eng\"><![CDATA[Guide, full version]]></name>\n\
         \t\t\t\t<limitation downloads=\"3\" days=\"7\"/>\n\t\t\t</file>\n",
    );
    assert_contains(ebook, "enable=\"wholesaler_or_orderer\">\n\t\t\t\t<name xml:lang=\"eng\"><![CDATA[Demo video]]></name>\n\t\t\t\t<limitation days=\"12\"/>");
    assert!(at("<images>") < at("<group "));

    assert_contains(
        product_xml(&doc, 1004),
        "\t\t<bundled type=\"specified\">\n\
         \t\t\t<product id=\"1001\" quantity=\"1.000\" type=\"client_chooses_defined_size\">\n\
         \t\t\t\t<sizes>\n\t\t\t\t\t<size id=\"2\"/>\n\t\t\t\t</sizes>\n\t\t\t</product>\n\
         \t\t\t<product id=\"1003\" quantity=\"2.000\" type=\"client_chooses_variant\"/>\n\
         \t\t</bundled>\n",
    );
    assert_contains(
        product_xml(&doc, 1005),
        "<product id=\"1002\" quantity=\"1.500\" type=\"client_chooses_defined_size_as_separate_items\">",
    );
}

fn gateway_file(kind: &str, md5: bool) -> GatewayFile {
    GatewayFile {
        url: format!("https://feeds.example/feeds/p1/tok/1/{kind}.xml?a=1&b=2"),
        md5: md5.then(|| "98b7e54f96335e632524ab267c11b8c3".to_string()),
        changed: Some(jiff::civil::date(2026, 11, 22).at(3, 0, 0, 0)),
    }
}

fn gateway_doc(
    f: &Fixture,
    shop: u32,
    others: Vec<(&'static str, GatewayFile)>,
) -> io::Result<String> {
    let dicts = DictIndex::new(f.dicts());
    let g = Gateway {
        shop: dicts.shop(shop).expect("shop"),
        generated: meta().generated,
        expires: jiff::civil::date(2026, 11, 29).at(10, 30, 0, 0),
        full: gateway_file("full", true),
        changes: vec![
            gateway_file("full_change2026-11-22T10-00-00", true),
            gateway_file("full_change2026-11-22T09-30-00", true),
        ],
        light: GatewayFile {
            url: "https://feeds.example/light.xml".into(),
            md5: None,
            changed: None,
        },
        categories: gateway_file("categories", true),
        sizes: gateway_file("sizes", true),
        others,
    };
    let mut out = Vec::new();
    crate::render::write_gateway(&mut out, &g)?;
    Ok(String::from_utf8(out).expect("utf-8"))
}

#[test]
fn gateway_meta_and_files() {
    let f = Fixture::new();
    let doc =
        gateway_doc(&f, 1, vec![("producers", gateway_file("producers", true))]).expect("gateway");
    assert_contains(
        &doc,
        "<provider_description file_format=\"IOF\" version=\"3.0\" generated_by=\"iofd\" generated=\"2026-11-22 10:30:00\">\n\t<meta>\n\
         \t\t<long_name><![CDATA[Hurtownia Zazolc Gesla Jazn]]></long_name>\n\
         \t\t<short_name><![CDATA[hurtownia]]></short_name>\n\
         \t\t<showcase_image url=\"https://hurtownia.example/logo.png\"/>\n",
    );
    assert_contains(
        &doc,
        "\t\t\t<street><![CDATA[ul. Świętokrzyska 12]]></street>\n",
    );
    assert_contains(
        &doc,
        "\t\t<time>\n\t\t\t<offer created=\"2026-11-22 10:30:00\"/>\n\t\t\t<offer expires=\"2026-11-29 10:30:00\"/>\n\t\t</time>\n",
    );
    assert_contains(
        &doc,
        "\t<full url=\"https://feeds.example/feeds/p1/tok/1/full.xml?a=1&amp;b=2\" hash=\"98b7e54f96335e632524ab267c11b8c3\" changed=\"2026-11-22 03:00:00\">\n\t\t<changes>\n\t\t\t<change url=\"https://feeds.example/feeds/p1/tok/1/full_change2026-11-22T10-00-00.xml",
    );
    assert_contains(&doc, "\t<light url=\"https://feeds.example/light.xml\"/>\n");
    assert_contains(&doc, "\t<producers url=");
    let doc2 = gateway_doc(&f, 2, Vec::new()).expect("gateway");
    assert_contains(
        &doc2,
        "<long_name><![CDATA[Sklep Lodz Co B2B]]></long_name>",
    );
    assert_contains(&doc2, "<short_name><![CDATA[sklep_lodz]]></short_name>");
    assert_contains(&doc2, "<showcase_image/>");
    assert_contains(&doc2, "<tel><![CDATA[]]></tel>");

    let err = gateway_doc(&f, 1, vec![("bogus", gateway_file("x", true))]).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidInput);
    let twice = vec![
        ("units", gateway_file("units", true)),
        ("units", gateway_file("units", true)),
    ];
    assert!(gateway_doc(&f, 1, twice).is_err());
}

#[test]
fn documents_validate_against_the_official_schemas() {
    let f = Fixture::new();
    for profile in [retail_pl(), wholesale_eur()] {
        let full_doc = render_full(&f, &profile);
        if let Err(e) = validate(Schema::Full, full_doc.as_bytes()) {
            panic!("full.xml for shop {}: {e}\n{full_doc}", profile.shop);
        }
        let light_doc = render_light(&f, &profile);
        if let Err(e) = validate(Schema::Light, light_doc.as_bytes()) {
            panic!("light.xml for shop {}: {e}\n{light_doc}", profile.shop);
        }
        // A change file: a few products with some nodes, one removed.
        let dicts = DictIndex::new(f.dicts());
        let mut change = Vec::new();
        write_full_header(&mut change, &profile, &meta()).expect("w");
        write_change_product(
            &mut change,
            &profile,
            &dicts,
            f.product(1001),
            &[MainNode::Sizes, MainNode::Parameters],
        )
        .expect("w");
        write_change_product(
            &mut change,
            &profile,
            &dicts,
            f.product(1003),
            &MainNode::ALL,
        )
        .expect("w");
        write_change_product(&mut change, &profile, &dicts, f.product(1005), &[]).expect("w");
        write_removed_product(&mut change, 999).expect("w");
        write_full_footer(&mut change).expect("w");
        if let Err(e) = validate(Schema::FullChange, &change) {
            panic!("change file for shop {}: {e}", profile.shop);
        }
    }
    let others = vec![
        ("producers", gateway_file("producers", true)),
        ("units", gateway_file("units", true)),
        ("parameters", gateway_file("parameters", true)),
        ("stocks", gateway_file("stocks", true)),
        ("series", gateway_file("series", true)),
        ("warranties", gateway_file("warranties", true)),
    ];
    for (shop, others) in [(1, others), (2, Vec::new())] {
        let doc = gateway_doc(&f, shop, others).expect("gateway");
        if let Err(e) = validate(Schema::Gateway, doc.as_bytes()) {
            panic!("gateway for shop {shop}: {e}\n{doc}");
        }
    }
}

#[test]
fn hostile_content_still_validates() {
    let mut dicts = sample_dictionaries();
    dicts.units[0].name = [("pol".to_string(), "2 pack: duży".to_string())].into();
    dicts.producers[0].name = "A\u{1}B ]]> \u{FFFF}\"'<&>".into();
    dicts.parameters[1].context = Some(" CONTEXT_COLOR ".into());
    let mut products = sample_products();
    let p = &mut products[0];
    p.description.name = [(
        "pol".to_string(),
        "bell\u{7} tab\t ]]]]>> \u{FFFE}end".to_string(),
    )]
    .into();
    p.description.long_desc = [("pol".to_string(), "<![CDATA[nested]]> \u{0}".to_string())].into();
    p.category = Some(999_999);
    p.series = Some(999_999);
    // A parameter the dictionary does not have: left out.
    p.parameters.push(crate::catalog::ProductParameter {
        id: 424_242,
        values: vec![1],
    });
    if let Some(promo) = &mut p.promotion {
        promo.start_date = Some("   ".into());
        promo.ending_date = Some("1 grudnia 2026 r.".into());
    }
    p.sizes[0].stock[1].location = Some("a\nb\rc\td".into());
    p.images[0].url = "https://x.example/a b?c=\"d\"&e=<f>".into();
    let f = Fixture::of(&dicts, &products);
    for profile in [retail_pl(), wholesale_eur()] {
        let doc = render_full(&f, &profile);
        if let Err(e) = validate(Schema::Full, doc.as_bytes()) {
            panic!("{e}\n{doc}");
        }
        let doc = render_light(&f, &profile);
        if let Err(e) = validate(Schema::Light, doc.as_bytes()) {
            panic!("{e}\n{doc}");
        }
    }
    let doc = render_full(&f, &retail_pl());
    let shirt = product_xml(&doc, 1001);
    assert_contains(
        shirt,
        "<producer id=\"1\" name=\"AB ]]&gt; &quot;&apos;&lt;&amp;&gt;\"/>",
    );
    assert_contains(shirt, "<unit id=\"1\" name=\"_2_pack_duży\"/>");
    assert_contains(shirt, "<![CDATA[bell tab\t ]]]]]]><![CDATA[>> end]]>");
    assert_contains(shirt, "<![CDATA[<![CDATA[nested]]]]><![CDATA[> ]]>");
    assert_contains(
        shirt,
        "<promotion name=\"Wyprzedaż zimowa &amp; więcej\" ending_date=\"1TgrudniaT2026Tr.\">",
    );
    assert_contains(shirt, "location_text_id=\"a&#10;b&#13;c&#9;d\"");
    assert_contains(shirt, "context_id=\"CONTEXT_COLOR\" name=\"Kolor\"");
    assert!(!shirt.contains("<category"), "unknown category left out");
    assert!(!shirt.contains("<series"), "unknown series left out");
}
