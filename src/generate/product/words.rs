//! The vocabulary product names, descriptions and promotions are drawn from.

use crate::generate::dict::Gender;

pub(super) const ADJECTIVES: [(&str, &str, &str, &str, &str); 11] = [
    (
        "elegancki",
        "elegancka",
        "eleganckie",
        "eleganckie",
        "elegant",
    ),
    ("wygodny", "wygodna", "wygodne", "wygodne", "comfortable"),
    ("lekki", "lekka", "lekkie", "lekkie", "lightweight"),
    (
        "klasyczny",
        "klasyczna",
        "klasyczne",
        "klasyczne",
        "classic",
    ),
    (
        "nowoczesny",
        "nowoczesna",
        "nowoczesne",
        "nowoczesne",
        "modern",
    ),
    (
        "wytrzymały",
        "wytrzymała",
        "wytrzymałe",
        "wytrzymałe",
        "durable",
    ),
    ("miękki", "miękka", "miękkie", "miękkie", "soft"),
    (
        "praktyczny",
        "praktyczna",
        "praktyczne",
        "praktyczne",
        "practical",
    ),
    // Food-friendly ones last: food picks only from here.
    (
        "ekologiczny",
        "ekologiczna",
        "ekologiczne",
        "ekologiczne",
        "organic",
    ),
    (
        "świąteczny",
        "świąteczna",
        "świąteczne",
        "świąteczne",
        "festive",
    ),
    (
        "rzemieślniczy",
        "rzemieślnicza",
        "rzemieślnicze",
        "rzemieślnicze",
        "artisan",
    ),
];
pub(super) const FOOD_ADJECTIVES: usize = 8;

pub(super) const MODELS: [&str; 20] = [
    "Łódź",
    "Gdańsk",
    "Kraków",
    "Zakopane",
    "Wrocław",
    "Poznań",
    "Żywiec",
    "Sopot",
    "Białowieża",
    "Toruń",
    "Kołobrzeg",
    "Świnoujście",
    "Nałęczów",
    "Ustka",
    "Hel",
    "Kazimierz",
    "Mazury",
    "Bieszczady",
    "Pieniny",
    "Częstochowa",
];

/// Name suffixes that need XML escaping downstream: `(pol, eng)`.
pub(super) const SPECIAL_SUFFIXES: [(&str, &str); 4] = [
    (" \"Limited\"", " \"Limited\""),
    (" & etui", " & case"),
    (" <nowość>", " <new>"),
    (" 2w1 'Duo'", " 2-in-1 'Duo'"),
];

pub(super) const TITLES: [(&str, &str); 10] = [
    ("Cisza nad Wartą", "Silence over the Warta"),
    ("Kuchnia polska na co dzień", "Everyday Polish cooking"),
    ("Ogród w mieście", "A garden in the city"),
    ("Zdrowy sen & dobry dzień", "Good sleep & a good day"),
    ("Sztuka negocjacji", "The art of negotiation"),
    ("Żółw, który się spieszył", "The tortoise in a hurry"),
    ("Rust <od podstaw>", "Rust <from scratch>"),
    ("Śladami Piastów", "In the footsteps of the Piasts"),
    ("Mały książę z Łodzi", "The little prince of Łódź"),
    ("Pieniądze > marzenia?", "Money > dreams?"),
];

pub(super) const FEATURES: [(&str, &str); 6] = [
    (
        "Wysoka jakość wykonania i szybka wysyłka.",
        "High-quality workmanship and fast shipping.",
    ),
    (
        "Wymiary opakowania < 30 × 20 cm.",
        "Package dimensions < 30 × 20 cm.",
    ),
    (
        "Świetny pomysł na prezent – święta & urodziny.",
        "A great gift idea – holidays & birthdays.",
    ),
    (
        "Produkt sprawdzony przez naszych klientów.",
        "Tried and tested by our customers.",
    ),
    (
        "Gwarantujemy zwrot do 30 dni, bez \"ale\".",
        "30-day returns, no \"buts\".",
    ),
    (
        "Zamówienia > 200 zł wysyłamy gratis.",
        "Free shipping on orders > PLN 200.",
    ),
];

pub(super) const SERVICE_TIERS: [(&str, &str); 3] = [
    ("Standard", "Standard"),
    ("Komfort", "Comfort"),
    ("Ekspres", "Express"),
];

pub(super) const PROMOTIONS: [&str; 3] =
    ["Promocja tygodnia", "Wyprzedaż sezonowa", "Black Week -20%"];

pub(super) fn adjective(i: usize, gender: Gender) -> &'static str {
    let a = ADJECTIVES[i];
    match gender {
        Gender::Masculine => a.0,
        Gender::Feminine => a.1,
        Gender::Neuter => a.2,
        Gender::Plural => a.3,
    }
}
