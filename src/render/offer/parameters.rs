//! `<parameters>`: sections, parameters and their values from the dictionary.

use super::{yes_no, Cx};
use crate::catalog::{ArchivedParameterKind, ArchivedProduct};
use crate::render::dicts::Context;
use crate::render::xml::XmlBuf;
fn context_attr(o: &mut Vec<u8>, context: Context) {
    match context {
        Context::None => {}
        Context::Standard(c) => o.attr(b"context_id", c),
        Context::Extension(c) => o.attr(b"iaiext:context_id", c),
    }
}

pub(super) fn parameters(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    if p.parameters.is_empty() {
        return;
    }
    let mark = o.len();
    o.raw(b"\t\t<parameters>\n");
    let body = o.len();
    for pp in p.parameters.iter() {
        let id = pp.id.to_native();
        let Some((def, context)) = cx.dicts.parameter_with_context(id) else {
            continue;
        };
        let Some(name) = cx.pick(&def.name) else {
            continue;
        };
        let section = matches!(def.kind, ArchivedParameterKind::Section);
        o.raw(if section {
            b"\t\t\t<parameter type=\"section\""
        } else {
            b"\t\t\t<parameter type=\"parameter\""
        });
        o.attr_u64(b"id", id);
        o.attr_u64(b"priority", u64::from(def.priority.to_native()));
        o.attr(b"distinction", yes_no(def.distinction));
        o.attr(b"group_distinction", yes_no(def.group_distinction));
        o.attr(b"hide", yes_no(def.hide));
        o.attr(b"auction_template_hide", yes_no(def.auction_template_hide));
        context_attr(o, context);
        o.attr(b"name", name);
        let open = o.len();
        o.raw(b">\n");
        let values_start = o.len();
        if !section {
            for (priority, value_id) in pp.values.iter().enumerate() {
                let value_id = value_id.to_native();
                let Some((value, context)) = cx.dicts.parameter_value(id, value_id) else {
                    continue;
                };
                let Some(value_name) = cx.pick(&value.name) else {
                    continue;
                };
                o.raw(b"\t\t\t\t<value");
                o.attr_u64(b"id", value_id);
                o.attr_u64(b"priority", priority as u64);
                context_attr(o, context);
                o.attr(b"name", value_name);
                o.raw(b"/>\n");
            }
        }
        if o.len() == values_start {
            o.truncate(open);
            o.raw(b"/>\n");
        } else {
            o.raw(b"\t\t\t</parameter>\n");
        }
    }
    if o.len() == body {
        o.truncate(mark);
    } else {
        o.raw(b"\t\t</parameters>\n");
    }
}
