//! The synthetic supplier's reference data: shops, warehouses, the category tree, producers,
//! units, series, warranties, size groups and the parameter dictionary.
//!
//! It is fixed (it does not depend on the seed): a seed varies the products of one supplier,
//! not the supplier. Everything here is small; products refer to it by id.

mod tree;

use tree::TREE;
pub(super) use tree::{Gender, Leaf, Theme};

use crate::catalog::{
    Address, Category, Parameter, ParameterKind, ParameterValue, Producer, Record, Series, Shop,
    SizeDef, SizeGroup, Texts, Unit, Warehouse, Warranty, WarrantyType,
};

/// Build a `Texts` from Polish and English.
pub(super) fn texts(pol: &str, eng: &str) -> Texts {
    let mut t = Texts::new();
    t.insert("pol".into(), pol.into());
    t.insert("eng".into(), eng.into());
    t
}

// ---------------------------------------------------------------------------------------
// Units.

pub(super) const UNIT_PCS: u64 = 1;
pub(super) const UNIT_KG: u64 = 2;
pub(super) const UNIT_L: u64 = 3;
pub(super) const UNIT_PAIR: u64 = 4;
pub(super) const UNIT_PACK: u64 = 5;

/// `(id, pol, eng, precision)`.
const UNITS: [(u64, &str, &str, u8); 5] = [
    (UNIT_PCS, "szt.", "pcs", 0),
    (UNIT_KG, "kg", "kg", 3),
    (UNIT_L, "l", "l", 3),
    (UNIT_PAIR, "para", "pair", 0),
    (UNIT_PACK, "opak.", "pack", 0),
];

/// Quantities in this unit are fractional (three decimal places).
pub(super) fn unit_is_fractional(unit: u64) -> bool {
    UNITS.iter().any(|u| u.0 == unit && u.3 > 0)
}

// ---------------------------------------------------------------------------------------
// Size groups.

pub(super) const SIZES_CLOTHING: u64 = 1;
pub(super) const SIZES_SHOES: u64 = 2;
pub(super) const SIZES_BEDDING: u64 = 3;

/// `(size id, pol, eng)`.
pub(super) type SizeSpec = (&'static str, &'static str, &'static str);

/// `(id, name, sizes)`. Bedding has non-numeric ids.
const SIZE_GROUPS: [(u64, &str, &[SizeSpec]); 3] = [
    (
        SIZES_CLOTHING,
        "Odzież",
        &[
            ("1", "XS", "XS"),
            ("2", "S", "S"),
            ("3", "M", "M"),
            ("4", "L", "L"),
            ("5", "XL", "XL"),
            ("6", "XXL", "XXL"),
        ],
    ),
    (
        SIZES_SHOES,
        "Obuwie",
        &[
            ("36", "36", "36"),
            ("37", "37", "37"),
            ("38", "38", "38"),
            ("39", "39", "39"),
            ("40", "40", "40"),
            ("41", "41", "41"),
            ("42", "42", "42"),
            ("43", "43", "43"),
            ("44", "44", "44"),
            ("45", "45", "45"),
            ("46", "46", "46"),
        ],
    ),
    (
        SIZES_BEDDING,
        "Pościel",
        &[
            ("140x200", "140 × 200 cm", "140 × 200 cm"),
            ("160x200", "160 × 200 cm", "160 × 200 cm"),
            ("200x220", "200 × 220 cm", "200 × 220 cm"),
            ("220x240", "220 × 240 cm", "220 × 240 cm"),
        ],
    ),
];

/// The size ids of a size group, in order.
pub(super) fn size_ids(group: u64) -> &'static [SizeSpec] {
    SIZE_GROUPS
        .iter()
        .find(|g| g.0 == group)
        .map_or(&[], |g| g.2)
}

// ---------------------------------------------------------------------------------------
// Warehouses and shops.

/// Warehouse ids; 0 is the supplier's external warehouse.
pub(super) const WAREHOUSES: [(u32, &str, &str); 4] = [
    (
        0,
        "Magazyn zewnętrzny dostawcy",
        "Supplier's external warehouse",
    ),
    (1, "Magazyn główny – Poznań", "Main warehouse – Poznań"),
    (2, "Magazyn Warszawa-Żerań", "Warsaw Żerań warehouse"),
    (3, "Sklep stacjonarny Kraków", "Kraków store"),
];

fn shops() -> [Shop; 2] {
    [
        Shop {
            id: 1,
            long_name: "Hurtownia Przykladowa".into(),
            short_name: "hurtownia-przykladowa".into(),
            logo_url: Some("https://hurtownia.example.com/img/logo.png".into()),
            email: "biuro@hurtownia.example.com".into(),
            tel: "+48 61 555 01 23".into(),
            fax: "+48 61 555 01 24".into(),
            www: "https://hurtownia.example.com".into(),
            address: Address {
                street: "ul. Święty Marcin 12/4".into(),
                zipcode: "61-803".into(),
                city: "Poznań".into(),
                country: "Polska".into(),
                province: "wielkopolskie".into(),
            },
        },
        Shop {
            id: 2,
            long_name: "Sklep Outlet Krakow".into(),
            short_name: "outlet_krakow".into(),
            logo_url: None,
            email: "outlet@hurtownia.example.com".into(),
            tel: "+48 12 555 77 00".into(),
            fax: String::new(),
            www: "https://outlet.example.com".into(),
            address: Address {
                street: "ul. Długa 44".into(),
                zipcode: "31-146".into(),
                city: "Kraków".into(),
                country: "Polska".into(),
                province: "małopolskie".into(),
            },
        },
    ]
}

// ---------------------------------------------------------------------------------------
// Producers, series, warranties.

/// Fictional producers; some names carry `&`, quotes or an apostrophe, as real ones do.
pub(super) const PRODUCERS: [&str; 50] = [
    "Nowak & Syn",
    "Wiśniewski Tekstylia",
    "Zielona Łąka",
    "Mazur & Kowalczyk",
    "Bałtyk Design",
    "Tatra Outdoor",
    "Kwiatkowska Atelier",
    "Żuraw Obuwie",
    "Polskie Smaki",
    "Młyn Górski",
    "ElektroMax",
    "Voltis",
    "Domowa Pracownia",
    "Szkło & Glina",
    "Leśny Dwór",
    "Pszczółka Sp. z o.o.",
    "Wydawnictwo Słowo",
    "Lumina",
    "Ogrodnik Pro",
    "Stalex",
    "Kawa & Herbata Świat",
    "Orzech Królewski",
    "Oliwkowy Gaj",
    "Drewnik",
    "Gdańskie Warsztaty",
    "Sound&Co",
    "Pixelo",
    "Wełniana Owca",
    "Len Polski",
    "Śnieżny Puch",
    "Ruda & Rudy",
    "Biały Jeleń",
    "Mistrz Kuchni",
    "Błękitna Fala",
    "Złota Nić",
    "Kraina Zabawek",
    "TechNova",
    "Amperos",
    "Grześ & Gosia",
    "Pracownia \"Zakątek\"",
    "O'Malley Goods",
    "Dąbrowski i Wspólnicy",
    "Pod Lipą",
    "Jaskółka",
    "Węgrzyn Skóry",
    "Hart-Stal",
    "Eko Dom",
    "Mała Czarna",
    "Bursztynowy Szlak",
    "Słodki Kąt",
];

/// Producer name by id (1-based).
pub(super) fn producer_name(id: u64) -> &'static str {
    usize::try_from(id)
        .ok()
        .and_then(|i| PRODUCERS.get(i.wrapping_sub(1)))
        .copied()
        .unwrap_or("")
}

/// `(pol, eng)`; ids are 1-based positions.
pub(super) const SERIES: [(&str, &str); 8] = [
    ("Klasyczna", "Classic"),
    ("Premium", "Premium"),
    ("Eko", "Eco"),
    ("Kolekcja Zima 2026", "Winter 2026 Collection"),
    ("Kolekcja Lato 2026", "Summer 2026 Collection"),
    ("Outdoor", "Outdoor"),
    ("Basic", "Basic"),
    ("Edycja limitowana", "Limited edition"),
];

pub(super) const WARRANTY_PRODUCER_24: u64 = 1;
pub(super) const WARRANTY_PRODUCER_12: u64 = 2;
pub(super) const WARRANTY_SELLER_12: u64 = 3;
pub(super) const WARRANTY_SELLER_6: u64 = 4;
pub(super) const WARRANTY_PRODUCER_60: u64 = 5;

fn warranties() -> Vec<Warranty> {
    let w = |id, kind, months, pol: &str, eng: &str, desc: Option<(&str, &str)>| Warranty {
        id,
        kind,
        period_months: months,
        name: texts(pol, eng),
        description: desc.map(|(p, e)| texts(p, e)).unwrap_or_default(),
    };
    vec![
        w(
            WARRANTY_PRODUCER_24,
            WarrantyType::Producer,
            24,
            "Gwarancja producenta 24 miesiące",
            "24-month manufacturer's warranty",
            Some((
                "<p>Naprawa w autoryzowanym serwisie &amp; odbiór kurierem <b>door-to-door</b>.</p>",
                "<p>Repair at an authorised service centre &amp; door-to-door courier pickup.</p>",
            )),
        ),
        w(
            WARRANTY_PRODUCER_12,
            WarrantyType::Producer,
            12,
            "Gwarancja producenta 12 miesięcy",
            "12-month manufacturer's warranty",
            None,
        ),
        w(
            WARRANTY_SELLER_12,
            WarrantyType::Seller,
            12,
            "Gwarancja sprzedawcy 12 miesięcy",
            "12-month seller's warranty",
            Some((
                "<p>Zgłoszenia przyjmujemy pod adresem serwis@hurtownia.example.com & telefonicznie.</p>",
                "<p>Claims by e-mail to serwis@hurtownia.example.com & by phone.</p>",
            )),
        ),
        w(
            WARRANTY_SELLER_6,
            WarrantyType::Seller,
            6,
            "Gwarancja sprzedawcy 6 miesięcy",
            "6-month seller's warranty",
            None,
        ),
        w(
            WARRANTY_PRODUCER_60,
            WarrantyType::Producer,
            60,
            "Gwarancja producenta 5 lat",
            "5-year manufacturer's warranty",
            None,
        ),
    ]
}

// ---------------------------------------------------------------------------------------
// Parameters.

pub(super) const SECTION_BASIC: u64 = 1;
pub(super) const SECTION_MATERIAL: u64 = 2;
pub(super) const SECTION_TECH: u64 = 3;
pub(super) const PARAM_COLOUR: u64 = 10;
pub(super) const PARAM_SEX: u64 = 11;
pub(super) const PARAM_SEASON: u64 = 12;
pub(super) const PARAM_STATE: u64 = 13;
pub(super) const PARAM_MATERIAL: u64 = 14;
pub(super) const PARAM_ORIGIN: u64 = 15;
pub(super) const PARAM_POWER: u64 = 16;
pub(super) const PARAM_CONNECTIVITY: u64 = 17;
pub(super) const PARAM_ADULTS: u64 = 18;
pub(super) const PARAM_HEEL: u64 = 19;
pub(super) const PARAM_FORMAT: u64 = 20;
pub(super) const PARAM_AGE: u64 = 21;

/// A parameter with its values: `(id, pol, eng, context, values: (pol, eng, context))`.
type ParamSpec = (
    u64,
    &'static str,
    &'static str,
    Option<&'static str>,
    &'static [(&'static str, &'static str, Option<&'static str>)],
);

/// Colours: the grouping parameter of variant groups.
pub(super) const COLOURS: &[(&str, &str, Option<&str>)] = &[
    ("czarny", "black", None),
    ("biały", "white", None),
    ("czerwony", "red", None),
    ("niebieski", "blue", None),
    ("zielony", "green", None),
    ("żółty", "yellow", None),
    ("różowy", "pink", None),
    ("beżowy", "beige", None),
    ("szary", "grey", None),
    ("granatowy", "navy", None),
];

const PARAMETERS: [ParamSpec; 12] = [
    (
        PARAM_COLOUR,
        "Kolor",
        "Colour",
        Some("CONTEXT_COLOR"),
        COLOURS,
    ),
    (
        PARAM_SEX,
        "Płeć",
        "Gender",
        Some("CONTEXT_SEX"),
        &[
            ("Mężczyzna", "Man", Some("CONTEXT_SEX_MAN")),
            ("Kobieta", "Woman", Some("CONTEXT_SEX_WOMAN")),
            ("Unisex", "Unisex", Some("CONTEXT_SEX_UNISEX")),
        ],
    ),
    (
        PARAM_SEASON,
        "Sezon",
        "Season",
        Some("CONTEXT_SEASON"),
        &[
            (
                "Wiosna – lato",
                "Spring – summer",
                Some("CONTEXT_SEASON_SPRING_SUMMER"),
            ),
            (
                "Jesień – zima",
                "Autumn – winter",
                Some("CONTEXT_SEASON_FALL_WINTER"),
            ),
            ("Całoroczny", "All year", None),
        ],
    ),
    (
        PARAM_STATE,
        "Stan",
        "Condition",
        Some("CONTEXT_STATE"),
        &[
            ("Nowy", "New", Some("CONTEXT_STATE_NEW")),
            (
                "Powystawowy",
                "Ex-display",
                Some("CONTEXT_STATE_NEW_OTHERS"),
            ),
            (
                "Odnowiony przez producenta",
                "Manufacturer refurbished",
                Some("CONTEXT_STATE_REFURBISHED_BY_PRODUCER"),
            ),
        ],
    ),
    (
        PARAM_MATERIAL,
        "Materiał",
        "Material",
        None,
        &[
            ("bawełna", "cotton", None),
            ("poliester", "polyester", None),
            ("wełna", "wool", None),
            ("len", "linen", None),
            ("skóra naturalna", "genuine leather", None),
            ("stal nierdzewna", "stainless steel", None),
            ("ceramika", "ceramic", None),
            ("drewno bukowe", "beech wood", None),
        ],
    ),
    (
        PARAM_ORIGIN,
        "Kraj pochodzenia",
        "Country of origin",
        None,
        &[
            ("Polska", "Poland", None),
            ("Niemcy", "Germany", None),
            ("Włochy", "Italy", None),
            ("Chiny", "China", None),
            ("Portugalia", "Portugal", None),
        ],
    ),
    (
        PARAM_POWER,
        "Moc",
        "Power",
        None,
        &[
            ("5 W", "5 W", None),
            ("20 W", "20 W", None),
            ("800 W", "800 W", None),
            ("1200 W", "1200 W", None),
            ("2000 W", "2000 W", None),
        ],
    ),
    (
        PARAM_CONNECTIVITY,
        "Łączność",
        "Connectivity",
        None,
        &[
            ("Bluetooth 5.3", "Bluetooth 5.3", None),
            ("USB-C", "USB-C", None),
            ("Wi-Fi", "Wi-Fi", None),
            ("przewodowa", "wired", None),
        ],
    ),
    (
        PARAM_ADULTS,
        "Tylko dla dorosłych",
        "Adults only",
        Some("CONTEXT_ONLY_ADULTS"),
        &[
            ("Tak", "Yes", Some("CONTEXT_ONLY_ADULTS_YES")),
            ("Nie", "No", Some("CONTEXT_ONLY_ADULTS_NO")),
        ],
    ),
    (
        PARAM_HEEL,
        "Wysokość obcasa",
        "Heel height",
        Some("CONTEXT_HEEL_HEIGHT"),
        &[
            ("3 cm", "3 cm", None),
            ("5 cm", "5 cm", None),
            ("8 cm", "8 cm", None),
        ],
    ),
    (
        PARAM_FORMAT,
        "Format",
        "Format",
        None,
        &[
            ("PDF", "PDF", None),
            ("EPUB", "EPUB", None),
            ("MOBI", "MOBI", None),
            ("MP3", "MP3", None),
        ],
    ),
    (
        PARAM_AGE,
        "Grupa wiekowa",
        "Age group",
        None,
        &[
            ("Dorośli", "Adults", Some("CONTEXT_AGE_GROUP_ADULT")),
            ("Dzieci", "Children", Some("CONTEXT_AGE_GROUP_MINOR")),
        ],
    ),
];

/// First value id; values are numbered in dictionary order.
const FIRST_VALUE_ID: u64 = 100;

/// The id of value `index` of parameter `param` (the dictionary numbers values in order).
pub(super) fn value_id(param: u64, index: usize) -> u64 {
    let mut next = FIRST_VALUE_ID;
    for (id, _, _, _, values) in &PARAMETERS {
        if *id == param {
            return next + index as u64;
        }
        next += values.len() as u64;
    }
    0
}

/// How many values parameter `param` has.
pub(super) fn value_count(param: u64) -> usize {
    PARAMETERS
        .iter()
        .find(|p| p.0 == param)
        .map_or(0, |p| p.4.len())
}

fn parameters() -> Vec<Parameter> {
    let section = |id, pol: &str, eng: &str, priority| Parameter {
        id,
        kind: ParameterKind::Section,
        name: texts(pol, eng),
        description: Texts::new(),
        priority,
        context: None,
        distinction: false,
        group_distinction: false,
        hide: false,
        auction_template_hide: false,
        values: Vec::new(),
    };
    let mut out = vec![
        section(
            SECTION_BASIC,
            "Informacje podstawowe",
            "Basic information",
            1,
        ),
        section(
            SECTION_MATERIAL,
            "Materiał i wykonanie",
            "Material & workmanship",
            2,
        ),
        section(SECTION_TECH, "Dane techniczne", "Technical data", 3),
    ];
    let mut next_value = FIRST_VALUE_ID;
    for (priority, (id, pol, eng, context, values)) in (10u32..).zip(PARAMETERS.iter()) {
        let values = values
            .iter()
            .map(|(vp, ve, vc)| {
                next_value += 1;
                ParameterValue {
                    id: next_value - 1,
                    name: texts(vp, ve),
                    context: vc.map(str::to_owned),
                }
            })
            .collect();
        out.push(Parameter {
            id: *id,
            kind: ParameterKind::Parameter,
            name: texts(pol, eng),
            description: if *id == PARAM_POWER {
                texts(
                    "Moc znamionowa urządzenia w watach (W).",
                    "Rated power of the device in watts (W).",
                )
            } else {
                Texts::new()
            },
            priority,
            context: context.map(str::to_owned),
            distinction: *id == PARAM_COLOUR,
            group_distinction: *id == PARAM_COLOUR,
            // The adults-only flag steers the shop, it is not shown to buyers.
            hide: *id == PARAM_ADULTS,
            auction_template_hide: *id == PARAM_ADULTS,
            values,
        });
    }
    out
}

/// A leaf of the tree with its category id and theme.
pub(super) struct LeafRef {
    pub category: u64,
    pub theme: Theme,
    pub leaf: &'static Leaf,
}

/// The whole dictionary: records to write first, and lookups for product synthesis.
pub(super) struct Dictionary {
    pub records: Vec<Record>,
    pub leaves: Vec<LeafRef>,
}

impl Dictionary {
    pub(super) fn new() -> Self {
        let mut records = Vec::new();
        records.extend(shops().into_iter().map(Record::Shop));
        records.extend(WAREHOUSES.iter().map(|(id, pol, eng)| {
            Record::Warehouse(Warehouse {
                id: *id,
                name: texts(pol, eng),
            })
        }));
        records.extend(UNITS.iter().map(|(id, pol, eng, precision)| {
            Record::Unit(Unit {
                id: *id,
                name: texts(pol, eng),
                precision: *precision,
            })
        }));
        let mut leaves = Vec::new();
        let mut next_id = 1u64;
        let mut category = |parent: Option<u64>, pol: &str, eng: &str, out: &mut Vec<Record>| {
            let id = next_id;
            next_id += 1;
            out.push(Record::Category(Category {
                id,
                parent,
                name: texts(pol, eng),
            }));
            id
        };
        for root in &TREE {
            let root_id = category(None, root.pol, root.eng, &mut records);
            for branch in root.branches {
                let branch_id = category(Some(root_id), branch.pol, branch.eng, &mut records);
                for leaf in branch.leaves {
                    let id = category(Some(branch_id), leaf.pol, leaf.eng, &mut records);
                    leaves.push(LeafRef {
                        category: id,
                        theme: root.theme,
                        leaf,
                    });
                }
            }
        }
        records.extend((1u64..).zip(PRODUCERS).map(|(id, name)| {
            Record::Producer(Producer {
                id,
                name: name.into(),
            })
        }));
        records.extend((1u64..).zip(SERIES).map(|(id, (pol, eng))| {
            Record::Series(Series {
                id,
                name: texts(pol, eng),
            })
        }));
        records.extend(warranties().into_iter().map(Record::Warranty));
        records.extend(SIZE_GROUPS.iter().map(|(id, name, sizes)| {
            Record::SizeGroup(SizeGroup {
                id: *id,
                name: (*name).into(),
                sizes: sizes
                    .iter()
                    .map(|(sid, pol, eng)| SizeDef {
                        id: (*sid).into(),
                        name: texts(pol, eng),
                    })
                    .collect(),
            })
        }));
        records.extend(parameters().into_iter().map(Record::Parameter));
        Dictionary { records, leaves }
    }
}
