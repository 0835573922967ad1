//! The interfaces' pages, embedded in the binary (no CDN, works offline).
//!
//! Owns the table of static files each interface serves without
//! authentication: its HTML page at the prefix, and the shared script and
//! style beside it. The files live in `web/`.
//!
//! Never: serves anything not in this table; inlines scripts (the
//! Content-Security-Policy allows scripts from 'self' only).

use crate::protocol::Kind;

/// A static file.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// Content type.
    pub content_type: &'static str,
    /// Content.
    pub body: &'static str,
}

pub(crate) const HTML: &str = "text/html; charset=utf-8";
pub(crate) const JS: &str = "text/javascript; charset=utf-8";
pub(crate) const CSS: &str = "text/css; charset=utf-8";

/// The file at `sub` (the path after the interface prefix), if any.
pub fn asset(kind: Kind, sub: &str) -> Option<Asset> {
    let (content_type, body) = match (kind, sub) {
        (Kind::WebAccount, "") => (HTML, include_str!("../../web/account.html")),
        (Kind::WebAdmin, "") => (HTML, include_str!("../../web/admin.html")),
        (Kind::WebMail, "") => (HTML, include_str!("../../web/webmail.html")),
        (Kind::WebAccount, "account.js") => (JS, include_str!("../../web/account.js")),
        (Kind::WebAdmin, "admin.js") => (JS, include_str!("../../web/admin.js")),
        (Kind::WebMail, "webmail.js") => (JS, include_str!("../../web/webmail.js")),
        (_, "common.js") => (JS, include_str!("../../web/common.js")),
        (_, "style.css") => (CSS, include_str!("../../web/style.css")),
        _ => return None,
    };
    Some(Asset { content_type, body })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_page_refers_only_to_served_files() {
        for kind in Kind::ALL {
            let page = asset(kind, "").expect("page");
            for part in page.body.split(['"', '\'']) {
                if part.ends_with(".js") || part.ends_with(".css") {
                    assert!(
                        asset(kind, part).is_some(),
                        "{kind}: {part} is referenced but not served"
                    );
                }
            }
            assert!(!page.body.contains("<script>"), "no inline scripts");
        }
        assert!(asset(Kind::WebAdmin, "account.js").is_none());
        assert!(asset(Kind::WebAccount, "../Cargo.toml").is_none());
    }
}
