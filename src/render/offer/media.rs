//! `<images>` (large images and icons) and `<attachments>`.

use super::description::{lang_text, lang_texts};
use super::{yes_no, Cx};
use crate::catalog::{
    ArchivedAttachmentEnable, ArchivedAttachmentType, ArchivedAttachmentVersion, ArchivedImage,
    ArchivedProduct,
};
use crate::render::xml::XmlBuf;
fn image_attrs(o: &mut Vec<u8>, image: &ArchivedImage) {
    o.attr(b"url", image.url.as_str());
    if let Some(md5) = image.md5.as_ref() {
        o.attr(b"hash", md5.as_str());
    }
    if let Some(changed) = image.changed.as_ref() {
        o.attr(b"changed", changed.as_str());
    }
    if let Some(width) = image.width.as_ref() {
        o.attr_u64(b"width", u64::from(width.to_native()));
    }
    if let Some(height) = image.height.as_ref() {
        o.attr_u64(b"height", u64::from(height.to_native()));
    }
}

pub(super) fn images(o: &mut Vec<u8>, p: &ArchivedProduct) {
    let icons = [
        (&b"icon"[..], p.icons.icon.as_ref()),
        (&b"auction_icon"[..], p.icons.auction_icon.as_ref()),
        (&b"group_icon"[..], p.icons.group_icon.as_ref()),
    ];
    let has_icons = icons.iter().any(|(_, i)| i.is_some());
    if p.images.is_empty() && !has_icons {
        return;
    }
    o.raw(b"\t\t<images>\n");
    if !p.images.is_empty() {
        o.raw(b"\t\t\t<large>\n");
        for (i, image) in p.images.iter().enumerate() {
            o.raw(b"\t\t\t\t<image");
            o.attr_u64(b"iaiext:priority", i as u64 + 1);
            image_attrs(o, image);
            o.raw(b"/>\n");
        }
        o.raw(b"\t\t\t</large>\n");
    }
    if has_icons {
        o.raw(b"\t\t\t<icons>\n");
        for (tag, icon) in icons {
            if let Some(icon) = icon {
                o.raw(b"\t\t\t\t<");
                o.raw(tag);
                image_attrs(o, icon);
                o.raw(b"/>\n");
            }
        }
        o.raw(b"\t\t\t</icons>\n");
    }
    o.raw(b"\t\t</images>\n");
}

pub(super) fn attachments(o: &mut Vec<u8>, cx: &Cx, p: &ArchivedProduct) {
    if p.attachments.is_empty() {
        return;
    }
    o.raw(b"\t\t<attachments>\n");
    for (i, a) in p.attachments.iter().enumerate() {
        o.raw(b"\t\t\t<file");
        o.attr(
            b"version",
            match a.version {
                ArchivedAttachmentVersion::Full => "full",
                ArchivedAttachmentVersion::Sample => "sample",
                ArchivedAttachmentVersion::Demo => "demo",
            },
        );
        o.attr(b"url", a.url.as_str());
        o.attr_u64(b"priority", i as u64 + 1);
        o.attr(
            b"attachment_file_type",
            match a.file_type {
                ArchivedAttachmentType::Image => "image",
                ArchivedAttachmentType::Audio => "audio",
                ArchivedAttachmentType::Video => "video",
                ArchivedAttachmentType::Doc => "doc",
                ArchivedAttachmentType::Document => "document",
                ArchivedAttachmentType::Other => "other",
            },
        );
        if let Some(ext) = a.extension.as_ref() {
            o.attr(b"attachment_file_extension", ext.as_str());
        }
        o.attr(
            b"enable",
            match a.enable {
                ArchivedAttachmentEnable::All => "all",
                ArchivedAttachmentEnable::OnlyLogged => "only_logged",
                ArchivedAttachmentEnable::Ordered => "ordered",
                ArchivedAttachmentEnable::Wholesaler => "wholesaler",
                // The schema's spelling.
                ArchivedAttachmentEnable::WholesalerOrOrdered => "wholesaler_or_orderer",
                ArchivedAttachmentEnable::WholesalerAndOrdered => "wholesaler_and_ordered",
            },
        );
        if let Some(log) = a.download_log.as_ref() {
            o.attr(b"download_log", yes_no(*log));
        }
        o.raw(b">\n");
        if !lang_texts(o, cx, &a.name, b"\t\t\t\t", b"name", true) {
            // <file> needs a name: the last segment of its URL.
            let url = a.url.as_str();
            let path = url.split(['?', '#']).next().unwrap_or(url);
            let file_name = path.rsplit('/').next().unwrap_or(path);
            lang_text(o, b"\t\t\t\t", b"name", cx.profile.language(), file_name);
        }
        let downloads = a.limit_downloads.as_ref().map(|x| x.to_native());
        let days = a.limit_days.as_ref().map(|x| x.to_native());
        if downloads.is_some() || days.is_some() {
            o.raw(b"\t\t\t\t<limitation");
            // xs:int limits.
            if let Some(n) = downloads {
                o.attr_u64(b"downloads", u64::from(n.min(i32::MAX as u32)));
            }
            if let Some(n) = days {
                o.attr_u64(b"days", u64::from(n.min(i32::MAX as u32)));
            }
            o.raw(b"/>\n");
        }
        o.raw(b"\t\t\t</file>\n");
    }
    o.raw(b"\t\t</attachments>\n");
}
