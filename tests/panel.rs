//! The operator's view from outside: partner activity over the admin API, kept across a
//! restart, and the panel at `/ui/` on a real server.

mod common;

use common::*;
use iofd::config::DEMO_ADMIN_TOKEN;

fn activity(server: &Server) -> serde_json::Value {
    let res = client()
        .get(format!("{}/v1/partners/activity", server.admin))
        .bearer_auth(DEMO_ADMIN_TOKEN)
        .send()
        .unwrap();
    assert_eq!(res.status(), 200);
    serde_json::from_slice(&res.bytes().unwrap()).unwrap()
}

fn partner<'a>(answer: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    answer["partners"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["partner"] == id)
        .unwrap_or_else(|| panic!("{id} in {answer}"))
}

#[test]
fn fetches_are_counted_per_partner_and_kind_and_survive_a_restart() {
    let dir = tempdir();
    let data = data_path(&dir);
    // The app's clock, moved by hand below instead of waiting.
    let start = jiff::Timestamp::now();
    let config = || {
        let mut c = iofd::config::Config::for_data_dir(&data);
        c.clock = iofd::clock::Clock::manual(start);
        c.partner_silent_after = std::time::Duration::from_secs(3600);
        c
    };
    let server = Server::start(config());
    let (id, token, shop) = demo_partners().remove(0);
    let gateway = format!("/feeds/{id}/{token}/{shop}/gateway.xml");
    let first = server.get(&gateway);
    assert_eq!(first.status(), 200);
    let etag = first.headers()["etag"].to_str().unwrap().to_string();
    let size = first.bytes().unwrap().len() as u64;
    let again = server.request(reqwest::Method::GET, &gateway, &[("If-None-Match", &etag)]);
    assert_eq!(again.status(), 304);
    // A wrong token is nobody's activity.
    assert_eq!(
        server
            .get(&format!("/feeds/{id}/wrong/{shop}/gateway.xml"))
            .status(),
        404
    );
    let unauthorized = client()
        .get(format!("{}/v1/partners/activity", server.admin))
        .send()
        .unwrap();
    assert_eq!(unauthorized.status(), 401);

    // A request is counted when its body ends on the server, an instant after the client
    // has read it.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    let answer = loop {
        let answer = activity(&server);
        if partner(&answer, &id)["requests_24h"] == 2 || std::time::Instant::now() > deadline {
            break answer;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    };
    let p = partner(&answer, &id);
    let kind = p["kinds"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kind"] == "gateway")
        .unwrap();
    assert_eq!(kind["requests_24h"], 2, "{p}");
    assert_eq!(kind["not_modified_24h"], 1, "{p}");
    assert_eq!(kind["bytes_24h"], size, "{p}");
    assert_eq!(kind["not_modified_share"], 0.5, "{p}");
    assert_eq!(p["silent"], false);
    let other = partner(&answer, &demo_partners()[1].0);
    assert_eq!(other["silent"], true, "never fetched: {other}");
    assert!(other["last_fetch"].is_null());
    server.stop();

    let server = Server::start(config());
    let restored = activity(&server);
    assert_eq!(
        partner(&restored, &id)["kinds"],
        p["kinds"],
        "saved at shutdown"
    );
    // An hour without a successful fetch (partner_silent_after) flags the partner.
    server
        .app
        .config
        .clock
        .advance(std::time::Duration::from_secs(3600));
    let later = activity(&server);
    let p = partner(&later, &id);
    assert_eq!(p["silent"], true, "{p}");
    assert_eq!(p["last_fetch"], partner(&restored, &id)["last_fetch"]);
    assert_eq!(later["silent_after_secs"], 3600);
}

/// A browser-like client of the panel that does not follow redirects and keeps one cookie.
struct Panel {
    admin: String,
    client: reqwest::blocking::Client,
    cookie: Option<String>,
}

/// The value of the first `name="{name}"` field of a page.
fn field(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {name} field in {html}"))
        + marker.len();
    html[start..][..html[start..].find('"').unwrap()].to_string()
}

impl Panel {
    fn new(server: &Server) -> Panel {
        Panel {
            admin: server.admin.clone(),
            client: reqwest::blocking::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            cookie: None,
        }
    }

    fn get(&self, path: &str) -> reqwest::blocking::Response {
        let mut req = self.client.get(format!("{}{path}", self.admin));
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        req.send().unwrap()
    }

    fn post(&self, path: &str, form: &[(&str, &str)]) -> reqwest::blocking::Response {
        let body: String = form_urlencoded::Serializer::new(String::new())
            .extend_pairs(form)
            .finish();
        let mut req = self
            .client
            .post(format!("{}{path}", self.admin))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body);
        if let Some(c) = &self.cookie {
            req = req.header("Cookie", c);
        }
        req.send().unwrap()
    }

    fn login(&mut self, token: &str) -> reqwest::blocking::Response {
        let form = self.get("/ui/login");
        assert_eq!(form.status(), 200);
        let cookie = form.headers()["set-cookie"].to_str().unwrap().to_string();
        let login_cookie = cookie.split(';').next().unwrap().to_string();
        let csrf = field(&form.text().unwrap(), "csrf");
        self.cookie = Some(login_cookie);
        let res = self.post("/ui/login", &[("csrf", &csrf), ("token", token)]);
        if res.status() == 303 {
            let session = res
                .headers()
                .get_all("set-cookie")
                .iter()
                .map(|v| v.to_str().unwrap().to_string())
                .find(|c| c.starts_with("iofd_session="))
                .unwrap();
            for attr in ["HttpOnly", "SameSite=Strict", "Max-Age=", "Path=/ui"] {
                assert!(session.contains(attr), "{attr} in {session}");
            }
            self.cookie = Some(session.split(';').next().unwrap().to_string());
        } else {
            self.cookie = None;
        }
        res
    }
}

fn location(res: &reqwest::blocking::Response) -> &str {
    res.headers()["location"].to_str().unwrap()
}

#[test]
fn the_panel_needs_a_session_and_its_token_for_every_change() {
    let dir = tempdir();
    let data = data_path(&dir);
    let server = Server::demo(&data);
    let partners = data.join("partners.toml");
    let before = std::fs::read_to_string(&partners).unwrap();
    let (id, token, shop) = demo_partners().remove(0);
    let gateway = format!("/feeds/{id}/{token}/{shop}/gateway.xml");
    let mut panel = Panel::new(&server);

    // Without a session: every page and every change is a 303 to the login page.
    for path in ["/ui/", "/ui/partners", &format!("/ui/partners/{id}")] {
        let res = panel.get(path);
        assert_eq!(res.status(), 303, "{path}");
        assert_eq!(location(&res), "/ui/login");
    }
    let res = panel.post(
        &format!("/ui/partners/{id}/access"),
        &[("offer_access", "off"), ("csrf", "x"), ("seen", "y")],
    );
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/ui/login"));
    assert_eq!(std::fs::read_to_string(&partners).unwrap(), before);

    let login = panel.get("/ui/login");
    for (name, value) in [
        ("cache-control", "no-store"),
        ("x-frame-options", "DENY"),
        ("x-content-type-options", "nosniff"),
    ] {
        assert_eq!(login.headers()[name], value);
    }
    let csp = login.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'none'"));
    assert_eq!(panel.login("wrong").status(), 401);
    let res = panel.login(DEMO_ADMIN_TOKEN);
    assert_eq!((res.status().as_u16(), location(&res)), (303, "/ui/"));

    // The drop folder: one file applied, one rejected; the overview names both.
    let inbox = data.join("inbox");
    let first_line = iofd::app::DEMO_CATALOG.lines().next().unwrap();
    for (name, text) in [
        ("good.jsonl", format!("{first_line}\n")),
        ("bad.jsonl", "not json\n".into()),
    ] {
        std::fs::write(inbox.join(format!(".{name}")), text).unwrap();
        std::fs::rename(inbox.join(format!(".{name}")), inbox.join(name)).unwrap();
    }
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(inbox.join("done/good.jsonl").exists()
        && inbox.join("rejected/bad.jsonl.errors.txt").exists())
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the drop folder took both files"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let api = client()
        .post(format!("{}/v1/records", server.admin))
        .bearer_auth(DEMO_ADMIN_TOKEN)
        .body(format!("{first_line}\n"))
        .send()
        .unwrap();
    assert_eq!(api.status(), 200);
    let overview = panel.get("/ui/");
    assert_eq!(overview.status(), 200);
    let text = overview.text().unwrap();
    assert!(
        text.contains("Products") && text.contains("Render profiles"),
        "{text}"
    );
    assert!(text.contains("good.jsonl at "), "{text}");
    assert!(text.contains("/v1/records at "), "{text}");
    assert!(
        text.contains("Last API full sync</dt><dd>none since start"),
        "{text}"
    );
    assert!(text.contains("<td>bad.jsonl</td>"), "{text}");
    let list = panel.get("/ui/partners").text().unwrap();
    for (p, _, _) in demo_partners() {
        assert!(list.contains(&format!("/ui/partners/{p}")), "{p} listed");
    }
    let card = panel.get(&format!("/ui/partners/{id}")).text().unwrap();
    let (csrf, seen) = (field(&card, "csrf"), field(&card, "seen"));

    // The session's CSRF token is required.
    let res = panel.post(
        &format!("/ui/partners/{id}/access"),
        &[("offer_access", "off"), ("csrf", "forged"), ("seen", &seen)],
    );
    assert_eq!(res.status(), 403);
    assert_eq!(std::fs::read_to_string(&partners).unwrap(), before);

    let res = panel.post(
        &format!("/ui/partners/{id}/access"),
        &[("offer_access", "off"), ("csrf", &csrf), ("seen", &seen)],
    );
    assert_eq!(res.status(), 303);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(1);
    while server.get(&gateway).status() != 403 {
        assert!(std::time::Instant::now() < deadline, "403 within a second");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }

    // A hand edit since the card was read: the change is refused and the edit kept.
    let by_hand = format!(
        "{}# edited by hand\n",
        std::fs::read_to_string(&partners).unwrap()
    );
    std::fs::write(&partners, &by_hand).unwrap();
    let res = panel.post(
        &format!("/ui/partners/{id}/access"),
        &[("offer_access", "on"), ("csrf", &csrf), ("seen", &seen)],
    );
    assert_eq!(res.status(), 409);
    assert!(res.text().unwrap().contains("# edited by hand"));
    assert_eq!(std::fs::read_to_string(&partners).unwrap(), by_hand);

    // Removal needs the id typed in.
    let card = panel.get(&format!("/ui/partners/{id}")).text().unwrap();
    let seen = field(&card, "seen");
    let res = panel.post(
        &format!("/ui/partners/{id}/remove"),
        &[("confirm", "no"), ("csrf", &csrf), ("seen", &seen)],
    );
    assert_eq!(res.status(), 422);
    assert!(std::fs::read_to_string(&partners).unwrap().contains(&id));

    let res = panel.post("/ui/logout", &[("csrf", &csrf)]);
    assert_eq!(res.status(), 303);
    assert_eq!(panel.get("/ui/").status(), 303, "logged out");
}

#[test]
fn rules_are_edited_on_the_card_with_the_cli_syntax_and_a_bad_rule_changes_nothing() {
    let dir = tempdir();
    let data = data_path(&dir);
    let server = Server::demo(&data);
    let partners = data.join("partners.toml");
    let (id, _, _) = demo_partners().remove(0);
    let mut panel = Panel::new(&server);
    assert_eq!(panel.login(DEMO_ADMIN_TOKEN).status(), 303);
    let card = panel.get(&format!("/ui/partners/{id}")).text().unwrap();
    let (csrf, seen) = (field(&card, "csrf"), field(&card, "seen"));
    let rules = |seen: &str, price_rules: &str| {
        panel.post(
            &format!("/ui/partners/{id}/rules"),
            &[
                ("csrf", &csrf),
                ("seen", seen),
                ("categories", "1"),
                ("producers", ""),
                ("include_products", ""),
                ("exclude_products", "123"),
                ("min_stock", ""),
                ("price_rules", price_rules),
                ("warehouses", ""),
                ("max_quantity", "50"),
                ("reserve", "2"),
            ],
        )
    };

    // A rule the CLI would refuse: nothing is written, the line is named.
    let before = std::fs::read_to_string(&partners).unwrap();
    let res = rules(&seen, "markup=10\nround=0.99,colour=red");
    assert_eq!(res.status(), 422);
    assert!(res.text().unwrap().contains("price_rules: line 2"));
    assert_eq!(std::fs::read_to_string(&partners).unwrap(), before);

    let res = rules(&seen, "category=1,markup=10,round=0.99\r\ndiscount=5\r\n");
    assert_eq!(res.status(), 303);
    let file: toml::Value = toml::from_str(&std::fs::read_to_string(&partners).unwrap()).unwrap();
    let entry = file["partner"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["id"].as_str() == Some(id.as_str()))
        .unwrap();
    assert_eq!(
        entry["assortment"]["categories"].as_array().unwrap().len(),
        1
    );
    assert_eq!(
        entry["assortment"]["exclude_products"][0].as_integer(),
        Some(123)
    );
    assert_eq!(entry["stock"]["max_quantity"].as_str(), Some("50"));
    assert_eq!(entry["price_rule"].as_array().unwrap().len(), 2);

    // The card shows the rules back in the syntax they were typed in, and clearing every
    // field leaves the partner as it was before rules.
    let card = panel.get(&format!("/ui/partners/{id}")).text().unwrap();
    assert!(
        card.contains("category=1,markup=10,round=0.99\ndiscount=5"),
        "{card}"
    );
    let seen = field(&card, "seen");
    let res = panel.post(
        &format!("/ui/partners/{id}/rules"),
        &[("csrf", &csrf), ("seen", &seen)],
    );
    assert_eq!(res.status(), 303);
    let after = std::fs::read_to_string(&partners).unwrap();
    for key in [
        "[partner.assortment]",
        "[[partner.price_rule]]",
        "[partner.stock]",
    ] {
        assert!(!after.contains(key), "{key} cleared: {after}");
    }
}
