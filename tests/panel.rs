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
    let server = Server::demo(&data);
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

    let server = Server::demo(&data);
    let restored = activity(&server);
    assert_eq!(
        partner(&restored, &id)["kinds"],
        p["kinds"],
        "saved at shutdown"
    );
}
