//! A small hand-built catalog that exercises every corner of the model: two shops, three
//! warehouses (including the supplier's warehouse 0), a three-level category tree, producers
//! with markup characters in their names, all six product types, one-size and multi-size
//! products, a bundle and a collection made of real products, a promotion, attachments with
//! download limits, a variant group, images and icons, and Polish and English texts full of
//! diacritics, `<>&"'` and `]]>`. Used by tests and benchmarks, and as demo data.

use rust_decimal::Decimal;

use super::*;

fn texts(pairs: &[(&str, &str)]) -> Texts {
    pairs
        .iter()
        .map(|(lang, text)| (lang.to_string(), text.to_string()))
        .collect()
}

/// An amount in hundredths: `money(12300)` is 123.00.
fn money(hundredths: i64) -> Decimal {
    Decimal::new(hundredths, 2)
}

fn price(net: i64, gross: i64) -> Price {
    Price {
        net: money(net),
        gross: money(gross),
    }
}

fn stock(warehouse: u32, quantity: i64) -> StockLevel {
    StockLevel {
        warehouse,
        quantity: Decimal::from(quantity),
        physical: None,
        location: None,
    }
}

fn size(product: u64, id: &str, ean: &str) -> Size {
    Size {
        id: id.into(),
        code: format!("{product}-{id}"),
        code_producer: Some(ean.into()),
        code_external: Some(format!("ERP-{product}-{id}")),
        weight: Some(350),
        weight_net: Some(300),
        prices: Prices::default(),
        stock: Vec::new(),
    }
}

fn image(url: &str, md5: &str) -> Image {
    Image {
        url: url.into(),
        md5: Some(md5.into()),
        changed: Some("2026-10-01 12:00:00".into()),
        width: Some(1200),
        height: Some(800),
    }
}

fn param(id: u64, values: &[u64]) -> ProductParameter {
    ProductParameter {
        id,
        values: values.to_vec(),
    }
}

fn product(id: ProductId, kind: ProductType, name: Texts) -> Product {
    Product {
        id,
        kind,
        vat: Decimal::from(23),
        code: Some(format!("SKU-{id}")),
        producer_code_standard: CodeStandard::Auto,
        shops: Vec::new(),
        producer: None,
        category: None,
        unit: Some(1),
        series: None,
        warranty: None,
        size_group: None,
        card_url: Some(format!("https://hurtownia.example/pl/products/{id}.html")),
        description: Description {
            name,
            ..Description::default()
        },
        prices: Prices::default(),
        promotion: None,
        sizes: Vec::new(),
        images: Vec::new(),
        icons: Icons::default(),
        parameters: Vec::new(),
        attachments: Vec::new(),
        group: None,
        bundled: None,
        stock: Vec::new(),
    }
}

fn parameter(id: u64, kind: ParameterKind, name: Texts, priority: u32) -> Parameter {
    Parameter {
        id,
        kind,
        name,
        description: Texts::new(),
        priority,
        context: None,
        distinction: false,
        group_distinction: false,
        hide: false,
        auction_template_hide: false,
        values: Vec::new(),
    }
}

fn value(id: u64, name: Texts, context: Option<&str>) -> ParameterValue {
    ParameterValue {
        id,
        name,
        context: context.map(str::to_string),
    }
}

/// The sample dictionaries, every list sorted by id.
pub fn sample_dictionaries() -> Dictionaries {
    let shops = vec![
        Shop {
            id: 1,
            long_name: "Hurtownia Zażółć Gęślą Jaźń".into(),
            short_name: "hurtownia".into(),
            logo_url: Some("https://hurtownia.example/logo.png".into()),
            email: "biuro@hurtownia.example".into(),
            tel: "+48 22 123 45 67".into(),
            fax: "+48 22 123 45 68".into(),
            www: "https://hurtownia.example".into(),
            address: Address {
                street: "ul. Świętokrzyska 12".into(),
                zipcode: "00-916".into(),
                city: "Warszawa".into(),
                country: "Polska".into(),
                province: "mazowieckie".into(),
            },
        },
        Shop {
            id: 2,
            long_name: "Sklep \"Łódź\" & Co. <B2B>".into(),
            short_name: "sklep łódź".into(),
            logo_url: None,
            email: "sklep@lodz.example".into(),
            tel: String::new(),
            fax: String::new(),
            www: "https://lodz.example".into(),
            address: Address::default(),
        },
    ];
    let categories = vec![
        Category {
            id: 100,
            parent: None,
            name: texts(&[("pol", "Odzież"), ("eng", "Clothing")]),
        },
        Category {
            id: 110,
            parent: Some(100),
            name: texts(&[("pol", "Męska"), ("eng", "Men")]),
        },
        Category {
            id: 111,
            parent: Some(110),
            name: texts(&[("pol", "Koszule & bluzy"), ("eng", "Shirts & sweatshirts")]),
        },
        Category {
            id: 200,
            parent: None,
            name: texts(&[("pol", "Elektronika"), ("eng", "Electronics")]),
        },
        Category {
            id: 210,
            parent: Some(200),
            name: texts(&[("pol", "Akcesoria")]),
        },
        Category {
            id: 300,
            parent: None,
            name: texts(&[("pol", "Usługi"), ("eng", "Services")]),
        },
    ];
    let producers = vec![
        Producer {
            id: 1,
            name: "H&M".into(),
        },
        Producer {
            id: 2,
            name: "Łucznik".into(),
        },
        Producer {
            id: 3,
            name: "Sony \"Electronics\" <EU>".into(),
        },
    ];
    let units = vec![
        Unit {
            id: 1,
            name: texts(&[("pol", "szt."), ("eng", "pcs")]),
            precision: 0,
        },
        Unit {
            id: 2,
            name: texts(&[("pol", "komplet"), ("eng", "set")]),
            precision: 0,
        },
        Unit {
            id: 3,
            name: texts(&[("pol", "litr"), ("eng", "litre")]),
            precision: 3,
        },
    ];
    let series = vec![Series {
        id: 1,
        name: texts(&[("pol", "Kolekcja zimowa"), ("eng", "Winter collection")]),
    }];
    let warranties = vec![
        Warranty {
            id: 1,
            kind: WarrantyType::Producer,
            period_months: 24,
            name: texts(&[
                ("pol", "Gwarancja producenta 2 lata"),
                ("eng", "Producer warranty, 2 years"),
            ]),
            description: texts(&[("pol", "<p>Naprawa w 14 dni</p>")]),
        },
        Warranty {
            id: 2,
            kind: WarrantyType::Seller,
            period_months: 1,
            name: texts(&[
                ("pol", "Gwarancja sklepu 30 dni"),
                ("eng", "Shop warranty, 30 days"),
            ]),
            description: Texts::new(),
        },
    ];
    let warehouses = vec![
        Warehouse {
            id: 0,
            name: texts(&[("pol", "Magazyn obcy"), ("eng", "Supplier warehouse")]),
        },
        Warehouse {
            id: 1,
            name: texts(&[("pol", "Magazyn główny"), ("eng", "Main warehouse")]),
        },
        Warehouse {
            id: 2,
            name: texts(&[("pol", "Magazyn Kraków"), ("eng", "Cracow warehouse")]),
        },
    ];
    let size_groups = vec![SizeGroup {
        id: 1,
        name: "Ubrania".into(),
        sizes: vec![
            SizeDef {
                id: "1".into(),
                name: texts(&[("pol", "mały"), ("eng", "small")]),
            },
            SizeDef {
                id: "2".into(),
                name: texts(&[("pol", "średni"), ("eng", "medium")]),
            },
            SizeDef {
                id: "3".into(),
                name: texts(&[("pol", "duży"), ("eng", "large")]),
            },
            SizeDef {
                id: "4".into(),
                name: texts(&[("pol", "bardzo duży"), ("eng", "extra large")]),
            },
        ],
    }];
    let mut colour = parameter(
        11,
        ParameterKind::Parameter,
        texts(&[("pol", "Kolor"), ("eng", "Colour")]),
        1,
    );
    colour.context = Some("CONTEXT_COLOR".into());
    colour.group_distinction = true;
    colour.values = vec![
        value(111, texts(&[("pol", "niebieski"), ("eng", "blue")]), None),
        value(112, texts(&[("pol", "żółty"), ("eng", "yellow")]), None),
    ];
    let mut material = parameter(
        12,
        ParameterKind::Parameter,
        texts(&[("pol", "Materiał"), ("eng", "Material")]),
        2,
    );
    material.group_distinction = true;
    material.hide = true;
    material.values = vec![
        value(121, texts(&[("pol", "bawełna"), ("eng", "cotton")]), None),
        value(
            122,
            texts(&[("pol", "poliester"), ("eng", "polyester")]),
            None,
        ),
    ];
    let mut sex = parameter(
        13,
        ParameterKind::Parameter,
        texts(&[("pol", "Płeć"), ("eng", "Sex")]),
        3,
    );
    sex.context = Some("CONTEXT_SEX".into());
    sex.distinction = true;
    sex.values = vec![value(
        131,
        texts(&[("pol", "mężczyzna"), ("eng", "man")]),
        Some("CONTEXT_SEX_MAN"),
    )];
    let mut connector = parameter(
        14,
        ParameterKind::Parameter,
        texts(&[("pol", "Złącze"), ("eng", "Connector")]),
        5,
    );
    // Not a context full.xsd enumerates: written as iaiext:context_id.
    connector.context = Some("CONTEXT_CONNECTOR".into());
    connector.auction_template_hide = true;
    connector.values = vec![value(141, texts(&[("pol", "USB-C <3.1>")]), None)];
    let parameters = vec![
        parameter(
            10,
            ParameterKind::Section,
            texts(&[("pol", "Sekcja główna"), ("eng", "Main section")]),
            0,
        ),
        colour,
        material,
        sex,
        connector,
        parameter(
            20,
            ParameterKind::Section,
            texts(&[("pol", "Dane techniczne"), ("eng", "Specifications")]),
            4,
        ),
    ];
    Dictionaries {
        shops,
        categories,
        producers,
        units,
        series,
        warranties,
        warehouses,
        size_groups,
        parameters,
    }
}

/// The sample products, normalized as the store holds them, sorted by id:
/// 1001 regular multi-size (every main node), 1002 its out-of-stock variant (shop 1 only),
/// 1003 virtual with limited attachments, 1004 bundle, 1005 collection, 1006 packaging
/// (shop 2 only), 1007 service named only in German.
pub fn sample_products() -> Vec<Product> {
    let mut shirt = product(
        1001,
        ProductType::Regular,
        texts(&[
            ("pol", "Koszula męska „Zażółć” <b>&</b>"),
            ("eng", "Men's shirt \"Classic\" & more"),
        ]),
    );
    shirt.code = Some("KOS-1001".into());
    shirt.producer_code_standard = CodeStandard::Gtin13;
    shirt.producer = Some(1);
    shirt.category = Some(111);
    shirt.series = Some(1);
    shirt.warranty = Some(1);
    shirt.size_group = Some(1);
    shirt.description.short_desc = texts(&[
        ("pol", "Bawełniana koszula – ąćęłńóśźż ĄĆĘŁŃÓŚŹŻ"),
        ("eng", "Cotton shirt, 'slim' fit"),
    ]);
    shirt.description.long_desc = texts(&[
        (
            "pol",
            "<p>Opis z <b>HTML</b> &amp; znakami ąęł, a także ]]> w środku.</p>",
        ),
        (
            "eng",
            "<p>Long description with ]]> and \"quotes\" & <i>tags</i>.</p>",
        ),
    ]);
    shirt.description.version =
        texts(&[("pol", "niebieski \\ bawełna"), ("eng", "blue \\ cotton")]);
    shirt.prices = Prices {
        retail: Some(price(10000, 12300)),
        wholesale: Some(price(8000, 9840)),
        srp: Some(price(12000, 14760)),
        strikethrough_retail: Some(price(11000, 13530)),
        strikethrough_wholesale: Some(price(9000, 11070)),
    };
    shirt.promotion = Some(Promotion {
        name: "Wyprzedaż zimowa & więcej".into(),
        start_date: Some("2026-11-01".into()),
        ending_date: Some("2026-11-30 23:59:59".into()),
        price: price(9000, 11070),
    });
    let mut s1 = size(1001, "1", "5901234123457");
    s1.stock = vec![
        stock(0, -1),
        StockLevel {
            warehouse: 1,
            quantity: Decimal::from(12),
            physical: Some(Decimal::from(15)),
            location: Some("strefa A & B".into()),
        },
    ];
    let mut s2 = size(1001, "2", "5901234123464");
    s2.stock = vec![stock(1, 0)];
    let mut s3 = size(1001, "3", "5901234123471");
    s3.prices.retail = Some(price(10500, 12915));
    s3.prices.wholesale = Some(price(8500, 10455));
    s3.stock = vec![stock(2, 3)];
    shirt.sizes = vec![s1, s2, s3];
    shirt.images = vec![
        image(
            "https://hurtownia.example/img/1001_1.jpg",
            "5cc2f0c172881899a70e1a3a0086c78f",
        ),
        image(
            "https://hurtownia.example/img/1001_2.jpg?v=2&size=large",
            "4c255061ccde0f7c04d21e79dc288874",
        ),
    ];
    shirt.icons = Icons {
        icon: Some(image(
            "https://hurtownia.example/icons/1001.jpg",
            "f7596f21c6e285ee2f3baea7ae382a2b",
        )),
        auction_icon: Some(image(
            "https://hurtownia.example/icons/auction/1001.jpg",
            "f7596f21c6e285ee2f3baea7ae382a2b",
        )),
        group_icon: Some(Image {
            url: "https://hurtownia.example/icons/group/1001.jpg".into(),
            md5: None,
            changed: None,
            width: None,
            height: None,
        }),
    };
    shirt.parameters = vec![
        param(10, &[]),
        param(11, &[111]),
        param(12, &[121]),
        param(13, &[131]),
    ];
    shirt.group = Some(Group {
        id: 5,
        first_product_id: 1001,
        by_parameter_id: "efac1b1fe38afd9a307b32a0c9f93ba1".into(),
        by_parameter_name: texts(&[("pol", "Kolor \\ Materiał"), ("eng", "Colour \\ Material")]),
        value_id: "b9e49e5669dae27d358d09a1957edd9b".into(),
        value_name: texts(&[("pol", "niebieski \\ bawełna"), ("eng", "blue \\ cotton")]),
    });

    let mut variant = product(
        1002,
        ProductType::Regular,
        texts(&[
            ("pol", "Koszula męska żółta"),
            ("eng", "Men's shirt, yellow"),
        ]),
    );
    variant.shops = vec![1];
    variant.producer = Some(1);
    variant.category = Some(111);
    variant.size_group = Some(1);
    variant.description.version = texts(&[("pol", "żółty \\ poliester")]);
    variant.prices.retail = Some(price(9000, 11070));
    let mut v1 = size(1002, "1", "5901234123488");
    v1.stock = vec![stock(1, 0)];
    let mut v2 = size(1002, "2", "5901234123495");
    v2.stock = vec![stock(0, 0), stock(1, 0)];
    variant.sizes = vec![v1, v2];
    variant.parameters = vec![param(11, &[112]), param(12, &[122])];
    variant.group = Some(Group {
        id: 5,
        first_product_id: 1001,
        by_parameter_id: "efac1b1fe38afd9a307b32a0c9f93ba1".into(),
        by_parameter_name: texts(&[("pol", "Kolor \\ Materiał")]),
        value_id: "3414abba35ed1c4c5a20d52239c33140".into(),
        value_name: texts(&[("pol", "żółty \\ poliester")]),
    });

    let mut ebook = product(
        1003,
        ProductType::Virtual,
        texts(&[
            ("pol", "Poradnik PDF: „Jak prać koszule?”"),
            ("eng", "PDF guide: 'How to wash shirts?'"),
        ]),
    );
    ebook.producer_code_standard = CodeStandard::Isbn13;
    ebook.producer = Some(3);
    ebook.category = Some(210);
    ebook.warranty = Some(2);
    ebook.prices.retail = Some(price(4999, 6149));
    ebook.stock = vec![stock(0, -1)];
    ebook.parameters = vec![param(20, &[]), param(14, &[141])];
    ebook.attachments = vec![
        Attachment {
            url: "https://hurtownia.example/files/guide.pdf?a=1&b=2".into(),
            name: texts(&[
                ("pol", "Poradnik – pełna wersja"),
                ("eng", "Guide, full version"),
            ]),
            version: AttachmentVersion::Full,
            enable: AttachmentEnable::Ordered,
            file_type: AttachmentType::Doc,
            extension: Some("pdf".into()),
            download_log: Some(true),
            limit_downloads: Some(3),
            limit_days: Some(7),
        },
        Attachment {
            url: "https://hurtownia.example/files/sample.mp3".into(),
            name: texts(&[("pol", "Próbka audio")]),
            version: AttachmentVersion::Sample,
            enable: AttachmentEnable::All,
            file_type: AttachmentType::Audio,
            extension: Some("mp3".into()),
            download_log: Some(false),
            limit_downloads: None,
            limit_days: None,
        },
        Attachment {
            url: "https://hurtownia.example/files/demo.webm".into(),
            name: texts(&[("eng", "Demo video")]),
            version: AttachmentVersion::Demo,
            enable: AttachmentEnable::WholesalerOrOrdered,
            file_type: AttachmentType::Video,
            extension: None,
            download_log: None,
            limit_downloads: None,
            limit_days: Some(12),
        },
    ];

    let mut bundle = product(
        1004,
        ProductType::Bundle,
        texts(&[
            ("pol", "Zestaw: koszula + poradnik"),
            ("eng", "Set: shirt + guide"),
        ]),
    );
    bundle.shops = vec![1, 2];
    bundle.producer = Some(2);
    bundle.category = Some(110);
    bundle.unit = Some(2);
    bundle.prices.retail = Some(price(15000, 18450));
    bundle.prices.srp = Some(price(16000, 19680));
    bundle.stock = vec![stock(1, 5)];
    bundle.bundled = Some(Bundled {
        kind: BundleType::Specified,
        components: vec![
            BundledComponent {
                id: 1001,
                quantity: Decimal::ONE,
                choice: ComponentChoice::ClientChoosesDefinedSize,
                sizes: vec!["2".into()],
            },
            BundledComponent {
                id: 1003,
                quantity: Decimal::from(2),
                choice: ComponentChoice::ClientChoosesVariant,
                sizes: Vec::new(),
            },
        ],
    });

    let mut collection = product(
        1005,
        ProductType::Collection,
        texts(&[("pol", "Kolekcja koszul"), ("eng", "Shirt collection")]),
    );
    collection.vat = Decimal::new(8, 0);
    collection.producer = Some(1);
    collection.category = Some(111);
    collection.series = Some(1);
    collection.prices.retail = Some(price(17000, 18360));
    collection.prices.wholesale = Some(price(15000, 16200));
    collection.stock = vec![stock(1, -1)];
    collection.bundled = Some(Bundled {
        kind: BundleType::Unspecified,
        components: vec![
            BundledComponent {
                id: 1001,
                quantity: Decimal::ONE,
                choice: ComponentChoice::ClientChoosesVariant,
                sizes: Vec::new(),
            },
            BundledComponent {
                id: 1002,
                quantity: Decimal::new(15, 1),
                choice: ComponentChoice::ClientChoosesDefinedSizeAsSeparateItems,
                sizes: vec!["1".into(), "2".into()],
            },
        ],
    });

    let mut packaging = product(
        1006,
        ProductType::Packaging,
        texts(&[("pol", "Pudełko prezentowe")]),
    );
    packaging.shops = vec![2];
    packaging.unit = Some(3);
    packaging.prices.retail = Some(price(500, 615));
    packaging.stock = vec![StockLevel {
        warehouse: 1,
        quantity: Decimal::new(10005, 1),
        physical: None,
        location: None,
    }];

    let mut service = product(
        1007,
        ProductType::Service,
        texts(&[("ger", "Montage-Service für Hemden")]),
    );
    service.vat = Decimal::ZERO;
    service.code = None;
    service.card_url = None;
    service.category = Some(300);
    service.unit = None;
    service.prices.retail = Some(price(2000, 2000));
    service.stock = vec![stock(0, -1)];

    let mut products = vec![
        shirt, variant, ebook, bundle, collection, packaging, service,
    ];
    for p in &mut products {
        if let Err(e) = p.normalize() {
            // Hand-written constant data: failing here is a bug in this file.
            panic!("sample product {} does not normalize: {e}", p.id);
        }
    }
    products
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_catalog_is_consistent() {
        let d = sample_dictionaries();
        let products = sample_products();
        assert!(d.warehouses.iter().any(|w| w.id == 0));
        assert!(d.warehouses.len() >= 3);
        assert_eq!(d.shops.len(), 2);
        for kind in [
            ProductType::Regular,
            ProductType::Bundle,
            ProductType::Collection,
            ProductType::Packaging,
            ProductType::Virtual,
            ProductType::Service,
        ] {
            assert!(products.iter().any(|p| p.kind == kind), "{kind:?}");
        }
        let ids: Vec<u64> = products.iter().map(|p| p.id).collect();
        for p in &products {
            assert!(!p.sizes.is_empty());
            if let Some(b) = &p.bundled {
                for c in &b.components {
                    assert!(ids.contains(&c.id), "component {} of {}", c.id, p.id);
                }
            }
            for param in &p.parameters {
                let def = d.parameters.iter().find(|x| x.id == param.id);
                let def = def.unwrap_or_else(|| panic!("parameter {}", param.id));
                for v in &param.values {
                    assert!(def.values.iter().any(|x| x.id == *v));
                }
            }
        }
        // One-size products got the single uniw size with their stock.
        let ebook = products.iter().find(|p| p.id == 1003).expect("1003");
        assert_eq!(ebook.sizes[0].id, "uniw");
        assert_eq!(ebook.sizes[0].code, "1003-uniw");
        assert_eq!(ebook.sizes[0].stock.len(), 1);
        // Every dictionary is sorted by id, as the store keeps them.
        assert!(d.categories.windows(2).all(|w| w[0].id < w[1].id));
        assert!(d.parameters.windows(2).all(|w| w[0].id < w[1].id));
    }
}
