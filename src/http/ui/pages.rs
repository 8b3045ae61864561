//! The panel's pages (maud escapes every value it writes).

use std::path::Path;

use hyper::{Response, StatusCode};
use maud::{html, Markup, DOCTYPE};

use super::overview::{self, Overview};
use super::{encode_segment, page};
use crate::activity::PartnerReport;
use crate::http::{Body, State};
use crate::partners::edit::{self, IssuedToken};
use crate::partners::rules_edit::format_price_rule;
use crate::partners::PartnerEntry;

/// Answer a GET of a page that needs a session.
pub fn get(state: &State, csrf: &str, path: &str, query: &str) -> Response<Body> {
    let done = done_message(query);
    match path {
        "/ui" | "/ui/" => with_partners(state, csrf, |file, seen| {
            let o = overview::gather(state);
            let reports = super::super::activity::reports(state);
            overview_page(csrf, &o, file.sharing.enabled, seen, &reports, done)
        }),
        "/ui/partners" => with_partners(state, csrf, |file, seen| {
            let reports = super::super::activity::reports(state);
            partners_page(state, csrf, &file.partners, seen, &reports, done)
        }),
        _ => {
            let id = path
                .strip_prefix("/ui/partners/")
                .filter(|id| !id.contains('/'))
                .and_then(super::decode_segment);
            match id {
                Some(id) => with_partners(state, csrf, |file, seen| {
                    let Some(entry) = file.partners.iter().find(|p| p.id == id) else {
                        return message(Some(csrf), "Not found", &format!("No partner {id:?}."));
                    };
                    let report = state.activity.report([id.as_str()]).remove(0);
                    card_page(state, csrf, entry, seen, &report, done)
                }),
                None => page(
                    StatusCode::NOT_FOUND,
                    message(Some(csrf), "Not found", "No such page."),
                ),
            }
        }
    }
}

/// A page built from the partners file as it is now and its content hash (what the page's
/// forms are made against); a file that does not load is shown with its reason.
fn with_partners(
    state: &State,
    csrf: &str,
    build: impl FnOnce(&crate::partners::PartnersFile, &str) -> Markup,
) -> Response<Body> {
    let path = state.panel.partners_path();
    match edit::list_seen(&path, &state.panel.config) {
        Ok((file, seen)) => page(StatusCode::OK, build(&file, &seen)),
        Err(e) => page(
            StatusCode::INTERNAL_SERVER_ERROR,
            message(
                Some(csrf),
                "The partners file does not load",
                &format!("{e} — the accounts in force keep serving; fix the file by hand or with iofd partners."),
            ),
        ),
    }
}

/// Fixed texts for the `done=` of a redirect after a change (nothing of the query is
/// echoed).
fn done_message(query: &str) -> Option<&'static str> {
    let done = form_urlencoded::parse(query.as_bytes())
        .find(|(k, _)| k == "done")
        .map(|(_, v)| v.into_owned())?;
    Some(match done.as_str() {
        "saved" => "Settings saved. The server applies them within a second.",
        "rules-saved" => "Rules saved. The server applies them within a second; files for new rules are rendered in the background.",
        "access-off" => "Offer access switched off: the partner's URLs answer 403 and its downloads in flight are cut.",
        "access-on" => "Offer access switched on: the same URLs and token work again.",
        "removed" => "Partner removed.",
        "sharing-on" => "Offer sharing switched on.",
        "sharing-off" => "Offer sharing switched off: every feed URL answers 403.",
        _ => return None,
    })
}

fn layout(title: &str, csrf: Option<&str>, content: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " — iofd" }
                link rel="stylesheet" href="/ui/style.css";
            }
            body {
                header {
                    span.brand { "iofd" }
                    @if let Some(csrf) = csrf {
                        nav aria-label="Main" {
                            a href="/ui/" { "Overview" }
                            a href="/ui/partners" { "Partners" }
                        }
                        form.logout method="post" action="/ui/logout" {
                            input type="hidden" name="csrf" value=(csrf);
                            button type="submit" { "Log out" }
                        }
                    }
                }
                main { h1 { (title) } (content) }
            }
        }
    }
}

fn hidden(csrf: &str, seen: &str) -> Markup {
    html! {
        input type="hidden" name="csrf" value=(csrf);
        input type="hidden" name="seen" value=(seen);
    }
}

fn notice(done: Option<&str>) -> Markup {
    html! { @if let Some(text) = done { p.notice role="status" { (text) } } }
}

/// A short page with a message and a way back.
pub fn message(csrf: Option<&str>, title: &str, text: &str) -> Markup {
    layout(
        title,
        csrf,
        html! {
            p.error role="alert" { (text) }
            p { a href="/ui/" { "Back to the overview" } }
        },
    )
}

pub fn login(csrf: &str, error: Option<&str>) -> Markup {
    layout(
        "Log in",
        None,
        html! {
            @if let Some(e) = error { p.error role="alert" { (e) } }
            form.card method="post" action="/ui/login" {
                input type="hidden" name="csrf" value=(csrf);
                label for="token" { "Admin token" }
                input #token type="password" name="token" autocomplete="current-password" required autofocus;
                button type="submit" { "Log in" }
            }
        },
    )
}

/// The partners file changed since the form was shown: nothing was saved.
pub fn conflict(csrf: Option<&str>, path: &Path, now: &str) -> Markup {
    layout(
        "The partners file changed",
        csrf,
        html! {
            p.error role="alert" {
                (path.display()) " was changed (by hand or by someone else) after this form was shown. "
                "Nothing was saved, so that change is not overwritten. Open the page again and redo your change."
            }
            h2 { "The file as it is now" }
            pre.file { (now) }
            p { a href="/ui/partners" { "Back to the partners" } }
        },
    )
}

/// A new token and its URLs, shown once.
pub fn issued(csrf: &str, issued: &IssuedToken, public_url: &str, title: &str) -> Markup {
    layout(
        title,
        Some(csrf),
        html! {
            p.notice role="status" {
                "Give these to " strong { (issued.partner) } ". The token is shown only now: the file keeps only its SHA-256."
            }
            dl {
                dt { "Token" }
                dd { code #token { (issued.token) } }
                dt { "Gateway URLs" }
                @for url in issued.gateway_urls(public_url) {
                    dd { code.gateway { (url) } }
                }
                dt { "The same in IdoSell's form" }
                @for url in issued.idosell_urls(public_url) {
                    dd { code { (url) } }
                }
            }
            p { a href={ "/ui/partners/" (encode_segment(&issued.partner)) } { "Open the partner card" } }
        },
    )
}

/// A time in whole seconds, UTC.
fn round(t: jiff::Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_second(t.as_second()).unwrap_or(t)
}

fn age(secs: u64) -> String {
    match secs {
        s if s < 120 => format!("{s} s"),
        s if s < 7200 => format!("{} min", s / 60),
        s if s < 172_800 => format!("{} h", s / 3600),
        s => format!("{} days", s / 86_400),
    }
}

fn bytes(n: u64) -> String {
    match n {
        n if n < 10 * 1024 => format!("{n} B"),
        n if n < 10 * 1024 * 1024 => format!("{} KiB", n / 1024),
        n => format!("{} MiB", n / (1024 * 1024)),
    }
}

fn overview_page(
    csrf: &str,
    o: &Overview,
    sharing: bool,
    seen: &str,
    reports: &[PartnerReport],
    done: Option<&str>,
) -> Markup {
    let silent: Vec<&str> = reports
        .iter()
        .filter(|r| r.silent)
        .map(|r| r.partner.as_str())
        .collect();
    layout(
        "Overview",
        Some(csrf),
        html! {
            (notice(done))
            section aria-labelledby="catalog" {
                h2 #catalog { "Catalog" }
                dl.facts {
                    dt { "Products" } dd { (o.products) }
                    dt { "Generation" } dd { (o.generation) }
                    dt { "Last API batch" }
                    dd { @match &o.last_api { Some(m) => { (m.what) " at " (round(m.at)) }, None => "none since start" } }
                    dt { "Last API full sync" }
                    dd { @match &o.last_api_full_sync { Some(m) => { (m.what) " at " (round(m.at)) }, None => "none since start" } }
                    dt { "Last drop-folder file" }
                    dd { @match &o.last_dropped { Some(d) => { (d.name) " at " (d.at) }, None => "none" } }
                    dt { "Last drop-folder full sync" }
                    dd { @match &o.last_dropped_full_sync { Some(d) => { (d.name) " at " (d.at) }, None => "none" } }
                    dt { "Last change" } dd { (round(o.published)) " (" (age(o.published_age_secs)) " ago)" }
                }
            }
            section aria-labelledby="publication" {
                h2 #publication { "Publication" }
                dl.facts {
                    dt { "State" } dd { @if o.ready { "published" } @else { "publishing…" } }
                    dt { "Generation served" } dd { (o.served_generation) }
                    dt { "Files" } dd { (o.files) }
                    dt { "Profiles" } dd { (o.profiles.len()) }
                    dt { "Pending render" } dd { (o.pending) }
                    dt { "Change files kept" } dd { (age(o.change_retention_secs)) }
                }
                div.scroll {
                    table {
                        caption { "Render profiles (partners with equal settings share one)" }
                        thead { tr { th { "Shop" } th { "Format" } th { "Languages" } th { "Currency" } th { "Base age" } th { "Change files" } } }
                        tbody {
                            @for p in &o.profiles {
                                tr {
                                    td { (p.shop) } td { (p.format) } td { (p.languages) } td { (p.currency) }
                                    td { @match p.base_age_secs { Some(s) => (age(s)), None => "pending" } }
                                    td { (p.change_files) }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="sharing" {
                h2 #sharing { "Offer sharing" }
                form.inline method="post" action="/ui/sharing" {
                    (hidden(csrf, seen))
                    @if sharing {
                        p { "On: partners with access can fetch their offers." }
                        input type="hidden" name="enabled" value="off";
                        button.danger type="submit" { "Switch sharing off for everyone" }
                    } @else {
                        p.error { "Off: every feed URL answers 403." }
                        input type="hidden" name="enabled" value="on";
                        button type="submit" { "Switch sharing on" }
                    }
                }
            }
            section aria-labelledby="activity" {
                h2 #activity { "Partners" }
                p { (reports.len()) " accounts. "
                    @if silent.is_empty() { "All fetched recently." }
                    @else { strong { (silent.len()) " silent: " } (silent.join(", ")) }
                    " " a href="/ui/partners" { "See the partners" } }
            }
            section aria-labelledby="inbox" {
                h2 #inbox { "Drop folder" }
                @if o.rejected.is_empty() { p { "No rejected files." } }
                @else {
                    div.scroll {
                        table {
                            caption { "Rejected files, newest first (inbox/rejected)" }
                            thead { tr { th { "File" } th { "First problem" } } }
                            tbody { @for r in &o.rejected { tr { td { (r.name) } td { (r.reason) } } } }
                        }
                    }
                    @if o.rejected_more > 0 { p { "…and " (o.rejected_more) " more." } }
                }
            }
        },
    )
}

fn last_fetch(r: Option<&PartnerReport>) -> Markup {
    html! {
        @match r {
            Some(r) if r.silent => { span.silent { "silent" } " " (r.last_fetch.as_deref().unwrap_or("never")) },
            Some(r) => (r.last_fetch.as_deref().unwrap_or("never")),
            None => "never",
        }
    }
}

fn partners_page(
    state: &State,
    csrf: &str,
    partners: &[PartnerEntry],
    seen: &str,
    reports: &[PartnerReport],
    done: Option<&str>,
) -> Markup {
    let base = &state.panel.config.base_currency;
    layout(
        "Partners",
        Some(csrf),
        html! {
            (notice(done))
            div.scroll {
                table {
                    caption { "Accounts and their settings" }
                    thead { tr {
                        th { "Id" } th { "Name" } th { "Access" } th { "Shops" } th { "Format" } th { "File" }
                        th { "Languages" } th { "Currency" } th { "Discount" } th { "Wholesale" } th { "In stock only" }
                        th { "Last fetch" } th { "Requests 24 h" }
                    } }
                    tbody {
                        @for p in partners {
                            @let r = reports.iter().find(|r| r.partner == p.id);
                            tr.partner {
                                td { a href={ "/ui/partners/" (encode_segment(&p.id)) } { (p.id) } }
                                td { (p.name) }
                                td { @if p.offer_access { "on" } @else { span.off { "off" } } }
                                td { (shops(&p.shops)) }
                                td { (edit::format_name(p.format)) }
                                td { (edit::file_type_name(p.file_type)) }
                                td { (p.languages.join(",")) }
                                td { (p.currency.as_deref().unwrap_or(base)) }
                                td { (p.discount_percent.normalize()) "%" }
                                td { @if p.wholesale { "yes" } @else { "no" } }
                                td { @if p.only_in_stock { "yes" } @else { "no" } }
                                td { (last_fetch(r)) }
                                td { (r.map_or(0, |r| r.requests_24h)) }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="add" {
                h2 #add { "Add a partner" }
                form.card method="post" action="/ui/partners" {
                    (hidden(csrf, seen))
                    label for="id" { "Id (used in URLs)" }
                    input #id name="id" required pattern="[A-Za-z0-9._@-]+";
                    (settings_fields(None, base))
                    button type="submit" { "Add partner" }
                }
            }
        },
    )
}

fn shops(shops: &[u32]) -> String {
    shops
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The settings fields of the add form (empty) and of a card (filled in).
fn settings_fields(p: Option<&PartnerEntry>, base: &str) -> Markup {
    let format = p.map_or("iof-3.0", |p| edit::format_name(p.format));
    let file_type = p.map_or("xml", |p| edit::file_type_name(p.file_type));
    html! {
        input type="hidden" name="flags" value="1";
        label for="name" { "Name" }
        input #name name="name" value=(p.map_or("", |p| p.name.as_str()));
        label for="shops" { "Shops (ids, comma-separated)" }
        input #shops name="shops" required value=(p.map(|p| shops(&p.shops)).unwrap_or_else(|| "1".into()));
        label for="format" { "Format" }
        select #format name="format" {
            option value="iof-3.0" selected[format == "iof-3.0"] { "IOF 3.0" }
            option value="csv" selected[format == "csv"] { "CSV" }
        }
        label for="file_type" { "File type" }
        select #file_type name="file_type" {
            option value="xml" selected[file_type == "xml"] { "xml" }
            option value="xml.gz" selected[file_type == "xml.gz"] { "xml.gz" }
        }
        label for="languages" { "Languages (first is the offer's)" }
        input #languages name="languages" value=(p.map(|p| p.languages.join(",")).unwrap_or_else(|| "pol".into()));
        label for="currency" { "Currency" }
        input #currency name="currency" maxlength="3" value=(p.and_then(|p| p.currency.clone()).unwrap_or_else(|| base.to_string()));
        label for="discount" { "Discount on light prices, %" }
        input #discount name="discount" inputmode="decimal" value=(p.map(|p| p.discount_percent.normalize().to_string()).unwrap_or_else(|| "0".into()));
        div.check {
            input #wholesale type="checkbox" name="wholesale" value="on" checked[p.is_some_and(|p| p.wholesale)];
            label for="wholesale" { "Wholesale prices" }
        }
        div.check {
            input #only_in_stock type="checkbox" name="only_in_stock" value="on" checked[p.is_some_and(|p| p.only_in_stock)];
            label for="only_in_stock" { "Only products in stock" }
        }
    }
}

fn joined<T: ToString>(ids: &[T]) -> String {
    ids.iter().map(T::to_string).collect::<Vec<_>>().join(",")
}

/// The rules form: every field is sent, an empty one clears its rule (the CLI's syntax).
fn rules_fields(p: &PartnerEntry) -> Markup {
    let a = &p.assortment;
    let quantity =
        |d: Option<rust_decimal::Decimal>| d.map(|d| d.normalize().to_string()).unwrap_or_default();
    let price_rules: Vec<String> = p.price_rule.iter().map(format_price_rule).collect();
    html! {
        fieldset {
            legend { "Assortment (empty: every product of the partner's shops)" }
            label for="categories" { "Categories, with their subcategories (ids)" }
            input #categories name="categories" value=(joined(&a.categories));
            label for="producers" { "Producers (ids)" }
            input #producers name="producers" value=(joined(&a.producers));
            label for="include_products" { "Always include products (ids)" }
            input #include_products name="include_products" value=(joined(&a.include_products));
            label for="exclude_products" { "Never include products (ids)" }
            input #exclude_products name="exclude_products" value=(joined(&a.exclude_products));
            label for="min_stock" { "Least shown stock" }
            input #min_stock name="min_stock" inputmode="decimal" value=(quantity(a.min_stock));
        }
        fieldset {
            legend { "Price rules (one per line, first match wins)" }
            label for="price_rules" { "e.g. category=47,markup=10,round=0.99 or discount=5" }
            textarea #price_rules name="price_rules" rows="3" { (price_rules.join("\n")) }
        }
        fieldset {
            legend { "Stock shown" }
            label for="warehouses" { "Only these warehouses (ids)" }
            input #warehouses name="warehouses" value=(joined(&p.stock.warehouses));
            label for="max_quantity" { "Largest quantity shown" }
            input #max_quantity name="max_quantity" inputmode="decimal" value=(quantity(p.stock.max_quantity));
            label for="reserve" { "Reserve (taken off each level)" }
            input #reserve name="reserve" inputmode="decimal" value=(quantity(p.stock.reserve));
        }
    }
}

fn card_page(
    state: &State,
    csrf: &str,
    p: &PartnerEntry,
    seen: &str,
    report: &PartnerReport,
    done: Option<&str>,
) -> Markup {
    let action = |what: &str| format!("/ui/partners/{}/{what}", encode_segment(&p.id));
    layout(
        &format!("Partner {}", p.id),
        Some(csrf),
        html! {
            (notice(done))
            section aria-labelledby="access" {
                h2 #access { "Offer access" }
                form.inline method="post" action=(action("access")) {
                    (hidden(csrf, seen))
                    @if p.offer_access {
                        p { "On: the partner can fetch its offer." }
                        input type="hidden" name="offer_access" value="off";
                        button.danger #switch type="submit" { "Switch offer access off" }
                    } @else {
                        p.error { "Off: its URLs answer 403; the account and settings are kept." }
                        input type="hidden" name="offer_access" value="on";
                        button #switch type="submit" { "Switch offer access on" }
                    }
                }
            }
            section aria-labelledby="activity" {
                h2 #activity { "Activity" }
                p { "Last fetch: " (last_fetch(Some(report))) ". Last 24 h: " (report.requests_24h) " requests, " (bytes(report.bytes_24h)) "." }
                @if !report.kinds.is_empty() {
                    div.scroll {
                        table {
                            caption { "By file" }
                            thead { tr { th { "File" } th { "Last success" } th { "Requests 24 h" } th { "Bytes 24 h" } th { "304 share" } th { "Last error" } } }
                            tbody {
                                @for k in &report.kinds {
                                    tr {
                                        td { (k.kind) }
                                        td { (k.last_success.as_deref().unwrap_or("never")) }
                                        td { (k.requests_24h) }
                                        td { (bytes(k.bytes_24h)) }
                                        td { @match k.not_modified_share { Some(s) => { (format!("{:.0}%", s * 100.0)) }, None => "–" } }
                                        td { @match &k.last_error { Some(e) => { (e.status) " at " (e.at) }, None => "–" } }
                                    }
                                }
                            }
                        }
                    }
                }
            }
            section aria-labelledby="settings" {
                h2 #settings { "Settings" }
                form.card method="post" action=(action("settings")) {
                    (hidden(csrf, seen))
                    (settings_fields(Some(p), &state.panel.config.base_currency))
                    button type="submit" { "Save settings" }
                }
            }
            section aria-labelledby="rules" {
                h2 #rules { "Rules" }
                p { "Which products the partner gets, at which prices, with which stock. "
                    "Explain one product with " code { "iofd partners explain " (p.id) " PRODUCT" } "." }
                form.card method="post" action=(action("rules")) {
                    (hidden(csrf, seen))
                    (rules_fields(p))
                    button type="submit" { "Save rules" }
                }
            }
            section aria-labelledby="token" {
                h2 #token { "Token" }
                form.inline method="post" action=(action("rotate")) {
                    (hidden(csrf, seen))
                    p { "A new token replaces the old one at once; the old URLs stop working." }
                    button.danger type="submit" { "Rotate token" }
                }
            }
            section aria-labelledby="remove" {
                h2 #remove { "Remove" }
                form.card method="post" action=(action("remove")) {
                    (hidden(csrf, seen))
                    label for="confirm" { "Type " strong { (p.id) } " to remove this account" }
                    input #confirm name="confirm" required autocomplete="off";
                    button.danger type="submit" { "Remove partner" }
                }
            }
        },
    )
}
