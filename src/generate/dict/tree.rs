//! Product themes and the category tree: three levels, each leaf with the noun, unit, size
//! group and VAT rate of the products filed under it.

use crate::catalog::ProductType;

use super::{SIZES_BEDDING, SIZES_CLOTHING, SIZES_SHOES};
use super::{UNIT_KG, UNIT_L, UNIT_PACK, UNIT_PAIR, UNIT_PCS};

/// A family of products: it decides prices, codes, weights and parameters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::generate) enum Theme {
    Clothing,
    Shoes,
    Home,
    Electronics,
    Food,
    Books,
    Digital,
    Services,
    Packaging,
}

impl Theme {
    /// The product type this theme's leaves are for.
    pub(in crate::generate) fn product_type(self) -> ProductType {
        match self {
            Theme::Digital => ProductType::Virtual,
            Theme::Services => ProductType::Service,
            Theme::Packaging => ProductType::Packaging,
            _ => ProductType::Regular,
        }
    }

    /// Whether products of this theme come in colour variant groups.
    pub(in crate::generate) fn has_variants(self) -> bool {
        matches!(
            self,
            Theme::Clothing | Theme::Shoes | Theme::Home | Theme::Electronics
        )
    }

    /// Net retail price range in grosze.
    pub(in crate::generate) fn price_range(self) -> (i64, i64) {
        match self {
            Theme::Clothing => (2_999, 49_900),
            Theme::Shoes => (8_999, 69_900),
            Theme::Home => (999, 89_900),
            Theme::Electronics => (1_999, 399_900),
            Theme::Food => (999, 19_900),
            Theme::Books => (1_999, 8_999),
            Theme::Digital => (999, 19_900),
            Theme::Services => (2_900, 49_900),
            Theme::Packaging => (500, 12_000),
        }
    }

    /// Prefix of the product code.
    pub(in crate::generate) fn code_prefix(self) -> &'static str {
        match self {
            Theme::Clothing => "ODZ",
            Theme::Shoes => "OBU",
            Theme::Home => "DOM",
            Theme::Electronics => "ELE",
            Theme::Food => "SPO",
            Theme::Books => "KSI",
            Theme::Digital => "CYF",
            Theme::Services => "USL",
            Theme::Packaging => "OPK",
        }
    }

    /// Weight with packaging in grams, per unit.
    pub(in crate::generate) fn weight_range(self) -> Option<(u32, u32)> {
        match self {
            Theme::Clothing => Some((150, 900)),
            Theme::Shoes => Some((600, 1_800)),
            Theme::Home => Some((100, 5_000)),
            Theme::Electronics => Some((50, 8_000)),
            Theme::Food => Some((1_000, 1_100)),
            Theme::Books => Some((200, 1_200)),
            Theme::Packaging => Some((300, 25_000)),
            Theme::Digital | Theme::Services => None,
        }
    }
}

/// Polish grammatical gender of a noun, for adjective agreement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(in crate::generate) enum Gender {
    Masculine,
    Feminine,
    Neuter,
    Plural,
}

/// A leaf category: what its products are called and how they are sold.
pub(in crate::generate) struct Leaf {
    pub pol: &'static str,
    pub eng: &'static str,
    /// The product noun: Polish, English, gender.
    pub noun: (&'static str, &'static str, Gender),
    pub unit: u64,
    pub size_group: Option<u64>,
    /// VAT in percent.
    pub vat: u32,
}

pub(super) struct Branch {
    pub(super) pol: &'static str,
    pub(super) eng: &'static str,
    pub(super) leaves: &'static [Leaf],
}

pub(super) struct Root {
    pub(super) theme: Theme,
    pub(super) pol: &'static str,
    pub(super) eng: &'static str,
    pub(super) branches: &'static [Branch],
}

const fn leaf(
    pol: &'static str,
    eng: &'static str,
    noun: (&'static str, &'static str, Gender),
    unit: u64,
    size_group: Option<u64>,
    vat: u32,
) -> Leaf {
    Leaf {
        pol,
        eng,
        noun,
        unit,
        size_group,
        vat,
    }
}

use Gender::{Feminine as F, Masculine as M, Neuter as N, Plural as P};

const C: Option<u64> = Some(SIZES_CLOTHING);
const S: Option<u64> = Some(SIZES_SHOES);
const B: Option<u64> = Some(SIZES_BEDDING);

// One leaf per line reads as a table.
#[rustfmt::skip]
pub(super) const TREE: [Root; 9] = [
    Root {
        theme: Theme::Clothing,
        pol: "Odzież",
        eng: "Clothing",
        branches: &[
            Branch {
                pol: "Odzież damska",
                eng: "Women's clothing",
                leaves: &[
                    leaf("Sukienki", "Dresses", ("Sukienka", "dress", F), UNIT_PCS, C, 23),
                    leaf("Bluzki", "Blouses", ("Bluzka", "blouse", F), UNIT_PCS, C, 23),
                    leaf("Kurtki", "Jackets", ("Kurtka", "jacket", F), UNIT_PCS, C, 23),
                ],
            },
            Branch {
                pol: "Odzież męska",
                eng: "Men's clothing",
                leaves: &[
                    leaf("Koszule", "Shirts", ("Koszula", "shirt", F), UNIT_PCS, C, 23),
                    leaf("Spodnie", "Trousers", ("Spodnie", "trousers", P), UNIT_PCS, C, 23),
                    leaf("Swetry", "Sweaters", ("Sweter", "sweater", M), UNIT_PCS, C, 23),
                ],
            },
            Branch {
                pol: "Odzież dziecięca",
                eng: "Children's clothing",
                leaves: &[
                    leaf("Piżamy", "Pyjamas", ("Piżama", "pyjamas", F), UNIT_PCS, C, 23),
                    leaf("Czapki", "Hats", ("Czapka", "hat", F), UNIT_PCS, None, 23),
                ],
            },
        ],
    },
    Root {
        theme: Theme::Shoes,
        pol: "Obuwie",
        eng: "Footwear",
        branches: &[
            Branch {
                pol: "Obuwie damskie",
                eng: "Women's footwear",
                leaves: &[
                    leaf("Szpilki", "High heels", ("Szpilki", "high heels", P), UNIT_PAIR, S, 23),
                    leaf("Botki", "Ankle boots", ("Botki", "ankle boots", P), UNIT_PAIR, S, 23),
                ],
            },
            Branch {
                pol: "Obuwie męskie",
                eng: "Men's footwear",
                leaves: &[
                    leaf("Półbuty", "Oxfords", ("Półbuty", "oxfords", P), UNIT_PAIR, S, 23),
                    leaf("Trampki", "Sneakers", ("Trampki", "sneakers", P), UNIT_PAIR, S, 23),
                    leaf("Buty zimowe", "Winter boots", ("Buty zimowe", "winter boots", P), UNIT_PAIR, S, 23),
                ],
            },
        ],
    },
    Root {
        theme: Theme::Home,
        pol: "Dom i ogród",
        eng: "Home & garden",
        branches: &[
            Branch {
                pol: "Kuchnia",
                eng: "Kitchen",
                leaves: &[
                    leaf("Garnki", "Pots", ("Garnek", "pot", M), UNIT_PCS, None, 23),
                    leaf("Kubki", "Mugs", ("Kubek", "mug", M), UNIT_PCS, None, 23),
                    leaf("Noże", "Knives", ("Nóż", "knife", M), UNIT_PCS, None, 23),
                ],
            },
            Branch {
                pol: "Sypialnia",
                eng: "Bedroom",
                leaves: &[
                    leaf("Pościel", "Bedding", ("Komplet pościeli", "bedding set", M), UNIT_PCS, B, 23),
                    leaf("Koce", "Blankets", ("Koc", "blanket", M), UNIT_PCS, None, 23),
                ],
            },
            Branch {
                pol: "Ogród",
                eng: "Garden",
                leaves: &[
                    leaf("Narzędzia ogrodowe", "Garden tools", ("Sekator", "pruner", M), UNIT_PCS, None, 23),
                    leaf("Doniczki", "Flower pots", ("Doniczka", "flower pot", F), UNIT_PCS, None, 23),
                    leaf("Nasiona", "Seeds", ("Nasiona", "seeds", P), UNIT_PACK, None, 8),
                ],
            },
        ],
    },
    Root {
        theme: Theme::Electronics,
        pol: "Elektronika",
        eng: "Electronics",
        branches: &[
            Branch {
                pol: "Audio",
                eng: "Audio",
                leaves: &[
                    leaf("Słuchawki", "Headphones", ("Słuchawki", "headphones", P), UNIT_PCS, None, 23),
                    leaf("Głośniki", "Speakers", ("Głośnik", "speaker", M), UNIT_PCS, None, 23),
                ],
            },
            Branch {
                pol: "Komputery",
                eng: "Computers",
                leaves: &[
                    leaf("Myszy", "Mice", ("Mysz", "mouse", F), UNIT_PCS, None, 23),
                    leaf("Klawiatury", "Keyboards", ("Klawiatura", "keyboard", F), UNIT_PCS, None, 23),
                    leaf("Kable i adaptery", "Cables & adapters", ("Kabel", "cable", M), UNIT_PCS, None, 23),
                ],
            },
            Branch {
                pol: "AGD",
                eng: "Home appliances",
                leaves: &[
                    leaf("Czajniki", "Kettles", ("Czajnik", "kettle", M), UNIT_PCS, None, 23),
                    leaf("Odkurzacze", "Vacuum cleaners", ("Odkurzacz", "vacuum cleaner", M), UNIT_PCS, None, 23),
                    leaf("Żelazka", "Irons", ("Żelazko", "iron", N), UNIT_PCS, None, 23),
                ],
            },
        ],
    },
    Root {
        theme: Theme::Food,
        pol: "Żywność",
        eng: "Food",
        branches: &[
            Branch {
                pol: "Kawa i herbata",
                eng: "Coffee & tea",
                leaves: &[
                    leaf("Kawa ziarnista", "Coffee beans", ("Kawa ziarnista", "coffee beans", F), UNIT_KG, None, 23),
                    leaf("Herbata liściasta", "Loose-leaf tea", ("Herbata liściasta", "loose-leaf tea", F), UNIT_PACK, None, 5),
                ],
            },
            Branch {
                pol: "Bakalie",
                eng: "Nuts & dried fruit",
                leaves: &[
                    leaf("Orzechy", "Nuts", ("Orzechy włoskie", "walnuts", P), UNIT_KG, None, 5),
                    leaf("Suszone owoce", "Dried fruit", ("Śliwki suszone", "dried plums", P), UNIT_KG, None, 5),
                ],
            },
            Branch {
                pol: "Oleje i octy",
                eng: "Oils & vinegars",
                leaves: &[
                    leaf("Oliwa z oliwek", "Olive oil", ("Oliwa z oliwek", "olive oil", F), UNIT_L, None, 5),
                    leaf("Ocet", "Vinegar", ("Ocet jabłkowy", "apple cider vinegar", M), UNIT_L, None, 5),
                ],
            },
        ],
    },
    Root {
        theme: Theme::Books,
        pol: "Książki",
        eng: "Books",
        branches: &[Branch {
            pol: "Książki papierowe",
            eng: "Printed books",
            leaves: &[
                leaf("Powieści", "Novels", ("Powieść", "novel", F), UNIT_PCS, None, 5),
                leaf("Poradniki", "Guides", ("Poradnik", "guide", M), UNIT_PCS, None, 5),
                leaf("Dla dzieci", "For children", ("Książka dla dzieci", "children's book", F), UNIT_PCS, None, 5),
            ],
        }],
    },
    Root {
        theme: Theme::Digital,
        pol: "Produkty cyfrowe",
        eng: "Digital products",
        branches: &[
            Branch {
                pol: "E-booki i audiobooki",
                eng: "E-books & audiobooks",
                leaves: &[
                    leaf("E-booki", "E-books", ("E-book", "e-book", M), UNIT_PCS, None, 5),
                    leaf("Audiobooki", "Audiobooks", ("Audiobook", "audiobook", M), UNIT_PCS, None, 5),
                ],
            },
            Branch {
                pol: "Karty podarunkowe",
                eng: "Gift cards",
                leaves: &[leaf("Karty elektroniczne", "E-gift cards", ("Karta podarunkowa", "gift card", F), UNIT_PCS, None, 0)],
            },
        ],
    },
    Root {
        theme: Theme::Services,
        pol: "Usługi",
        eng: "Services",
        branches: &[
            Branch {
                pol: "Montaż i serwis",
                eng: "Installation & service",
                leaves: &[
                    leaf("Montaż", "Installation", ("Montaż sprzętu AGD", "appliance installation", M), UNIT_PCS, None, 8),
                    leaf("Serwis", "Repairs", ("Przegląd serwisowy", "service inspection", M), UNIT_PCS, None, 23),
                ],
            },
            Branch {
                pol: "Personalizacja",
                eng: "Personalisation",
                leaves: &[
                    leaf("Grawerowanie", "Engraving", ("Grawerowanie laserowe", "laser engraving", N), UNIT_PCS, None, 23),
                    leaf("Pakowanie na prezent", "Gift wrapping", ("Pakowanie na prezent", "gift wrapping", N), UNIT_PCS, None, 23),
                ],
            },
        ],
    },
    Root {
        theme: Theme::Packaging,
        pol: "Opakowania",
        eng: "Packaging",
        branches: &[Branch {
            pol: "Opakowania zwrotne",
            eng: "Returnable packaging",
            leaves: &[
                leaf("Skrzynki", "Crates", ("Skrzynka zwrotna", "returnable crate", F), UNIT_PCS, None, 23),
                leaf("Palety", "Pallets", ("Paleta EUR", "EUR pallet", F), UNIT_PCS, None, 23),
            ],
        }],
    },
];
