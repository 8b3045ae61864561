//! The panel's changes (POST, session and CSRF already checked): each one an edit of
//! `partners.toml` through the editor of `iofd partners`, made against the content hash the
//! form was rendered with (field `seen`), so a file changed meanwhile is refused and shown,
//! never overwritten. The running server picks the file up as after a CLI edit (hot reload,
//! purge, revocation of downloads in flight).

use hyper::{Response, StatusCode};

use super::{encode_segment, page, pages, see_other, Form};
use crate::http::{Body, State};
use crate::partners::cli::{parse_decimal, parse_file_type, parse_format, parse_switch};
use crate::partners::edit::{self, EditError, Settings, Target};
use crate::partners::rules_edit::{parse_price_rule, RuleSettings};

/// Dispatch a POST under `/ui`.
pub fn post(state: &State, csrf: &str, path: &str, form: &Form) -> Response<Body> {
    let result = match path {
        "/ui/sharing" => sharing(state, form),
        "/ui/partners" => add(state, csrf, form),
        _ => match path
            .strip_prefix("/ui/partners/")
            .and_then(|rest| rest.split_once('/'))
            .and_then(|(id, action)| super::decode_segment(id).map(|id| (id, action)))
        {
            Some((id, "settings")) => settings(state, &id, form),
            Some((id, "rules")) => rules(state, &id, form),
            Some((id, "access")) => access(state, &id, form),
            Some((id, "rotate")) => rotate(state, csrf, &id, form),
            Some((id, "remove")) => remove(state, &id, form),
            _ => Err(Failure::NotFound),
        },
    };
    result.unwrap_or_else(|failure| failure.page(csrf))
}

/// Why a change was not made.
enum Failure {
    NotFound,
    /// A form value that is not what the field takes.
    Field {
        field: &'static str,
        reason: String,
    },
    Edit(EditError),
    /// Removal asked without typing the id.
    Unconfirmed(String),
}

impl From<EditError> for Failure {
    fn from(e: EditError) -> Failure {
        Failure::Edit(e)
    }
}

impl Failure {
    fn page(self, csrf: &str) -> Response<Body> {
        let csrf = Some(csrf);
        match self {
            Failure::NotFound => page(
                StatusCode::NOT_FOUND,
                pages::message(csrf, "Not found", "No such page."),
            ),
            Failure::Field { field, reason } => page(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::message(
                    csrf,
                    "Not saved",
                    &format!("{field}: {reason}. Nothing was changed."),
                ),
            ),
            Failure::Unconfirmed(id) => page(
                StatusCode::UNPROCESSABLE_ENTITY,
                pages::message(
                    csrf,
                    "Not removed",
                    &format!("To remove {id}, type its id in the confirmation field. Nothing was changed."),
                ),
            ),
            Failure::Edit(EditError::Conflict { path }) => {
                // Show the file as it is now: what the operator would have overwritten.
                let now = std::fs::read_to_string(&path).unwrap_or_default();
                page(StatusCode::CONFLICT, pages::conflict(csrf, &path, &now))
            }
            Failure::Edit(e @ EditError::UnknownPartner(_)) => page(
                StatusCode::NOT_FOUND,
                pages::message(csrf, "Not found", &e.to_string()),
            ),
            Failure::Edit(e) => {
                let status = match e {
                    EditError::Read { .. } | EditError::Write { .. } => {
                        tracing::error!(error = %e, "panel: partners file");
                        StatusCode::INTERNAL_SERVER_ERROR
                    }
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                page(status, pages::message(csrf, "Not saved", &e.to_string()))
            }
        }
    }
}

type Answer = Result<Response<Body>, Failure>;

fn target<'a>(path: &'a std::path::Path, form: &'a Form) -> Target<'a> {
    Target {
        path,
        // A form without it is refused like a stale one: every form of the panel has it.
        seen: Some(form.get("seen").unwrap_or("")),
    }
}

/// A field that may be left empty; parsed with the command line's parser.
fn optional<T>(
    form: &Form,
    field: &'static str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Failure> {
    match form.get(field).map(str::trim) {
        None | Some("") => Ok(None),
        Some(v) => parse(v)
            .map(Some)
            .map_err(|reason| Failure::Field { field, reason }),
    }
}

fn list(v: &str) -> Result<Vec<String>, String> {
    Ok(v.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect())
}

fn shops(v: &str) -> Result<Vec<u32>, String> {
    list(v)?
        .iter()
        .map(|s| {
            s.parse::<u32>()
                .map_err(|_| format!("{s:?} is not a shop id"))
        })
        .collect()
}

/// The settings of an edit form. Check boxes are absent when unticked, so the form says
/// which booleans it carries with a hidden `flags` field.
fn settings_of(form: &Form) -> Result<Settings, Failure> {
    let flag = |name: &str| -> Option<bool> {
        form.get("flags").is_some().then(|| {
            form.get(name)
                .is_some_and(|v| parse_switch(v).unwrap_or(false))
        })
    };
    Ok(Settings {
        name: form.get("name").map(|n| n.trim().to_string()),
        shops: optional(form, "shops", shops)?,
        format: optional(form, "format", parse_format)?,
        file_type: optional(form, "file_type", parse_file_type)?,
        languages: optional(form, "languages", list)?,
        currency: optional(form, "currency", |v| Ok(v.to_ascii_uppercase()))?,
        discount_percent: optional(form, "discount", parse_decimal)?,
        wholesale: flag("wholesale"),
        only_in_stock: flag("only_in_stock"),
        rules: Default::default(),
    })
}

/// The rules form carries every rule field: an empty one clears its key, so what the form
/// shows is what the file holds after saving.
fn rules_of(form: &Form) -> Result<RuleSettings, Failure> {
    fn ids<T: std::str::FromStr>(form: &Form, field: &'static str) -> Result<Vec<T>, Failure> {
        list(form.get(field).unwrap_or(""))
            .map_err(|reason| Failure::Field { field, reason })?
            .iter()
            .map(|s| {
                s.parse::<T>().map_err(|_| Failure::Field {
                    field,
                    reason: format!("{s:?} is not an id"),
                })
            })
            .collect()
    }
    let quantity = |field: &'static str| optional(form, field, parse_decimal);
    let mut price_rules = Vec::new();
    for (n, line) in form.get("price_rules").unwrap_or("").lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let rule = parse_price_rule(line).map_err(|e| Failure::Field {
            field: "price_rules",
            reason: format!("line {}: {e}", n + 1),
        })?;
        price_rules.push(rule);
    }
    Ok(RuleSettings {
        categories: Some(ids(form, "categories")?),
        producers: Some(ids(form, "producers")?),
        include_products: Some(ids(form, "include_products")?),
        exclude_products: Some(ids(form, "exclude_products")?),
        min_stock: Some(quantity("min_stock")?),
        price_rules: Some(price_rules),
        warehouses: Some(ids(form, "warehouses")?),
        max_quantity: Some(quantity("max_quantity")?),
        reserve: Some(quantity("reserve")?),
    })
}

fn rules(state: &State, id: &str, form: &Form) -> Answer {
    let path = state.panel.partners_path();
    let s = Settings {
        rules: rules_of(form)?,
        ..Settings::default()
    };
    edit::set(target(&path, form), &state.panel.config, id, &s)?;
    Ok(card(id, "rules-saved"))
}

fn card(id: &str, done: &str) -> Response<Body> {
    see_other(
        &format!("/ui/partners/{}?done={done}", encode_segment(id)),
        None,
    )
}

fn settings(state: &State, id: &str, form: &Form) -> Answer {
    let path = state.panel.partners_path();
    let s = settings_of(form)?;
    edit::set(target(&path, form), &state.panel.config, id, &s)?;
    Ok(card(id, "saved"))
}

fn access(state: &State, id: &str, form: &Form) -> Answer {
    let path = state.panel.partners_path();
    let on = optional(form, "offer_access", parse_switch)?.ok_or(Failure::Field {
        field: "offer_access",
        reason: "expected on or off".into(),
    })?;
    edit::set_access(target(&path, form), &state.panel.config, id, on)?;
    Ok(card(id, if on { "access-on" } else { "access-off" }))
}

fn rotate(state: &State, csrf: &str, id: &str, form: &Form) -> Answer {
    let path = state.panel.partners_path();
    let issued = edit::rotate(target(&path, form), &state.panel.config, id)?;
    Ok(page(
        StatusCode::OK,
        pages::issued(csrf, &issued, &state.public_url, "New token"),
    ))
}

fn remove(state: &State, id: &str, form: &Form) -> Answer {
    if form.get("confirm").map(str::trim) != Some(id) {
        return Err(Failure::Unconfirmed(id.to_string()));
    }
    let path = state.panel.partners_path();
    edit::remove(target(&path, form), &state.panel.config, id)?;
    Ok(see_other("/ui/partners?done=removed", None))
}

fn add(state: &State, csrf: &str, form: &Form) -> Answer {
    let id = form.get("id").map(str::trim).unwrap_or("");
    if id.is_empty() {
        return Err(Failure::Field {
            field: "id",
            reason: "a new partner needs an id".into(),
        });
    }
    let path = state.panel.partners_path();
    let s = settings_of(form)?;
    let issued = edit::add(target(&path, form), &state.panel.config, id, &s)?;
    Ok(page(
        StatusCode::OK,
        pages::issued(csrf, &issued, &state.public_url, "Partner added"),
    ))
}

fn sharing(state: &State, form: &Form) -> Answer {
    let path = state.panel.partners_path();
    let on = optional(form, "enabled", parse_switch)?.ok_or(Failure::Field {
        field: "enabled",
        reason: "expected on or off".into(),
    })?;
    edit::set_sharing(target(&path, form), &state.panel.config, on)?;
    Ok(see_other(
        if on {
            "/ui/?done=sharing-on"
        } else {
            "/ui/?done=sharing-off"
        },
        None,
    ))
}
