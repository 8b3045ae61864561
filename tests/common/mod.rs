//! A real iofd server on 127.0.0.1:0 for integration tests (through `iofd::server`, as
//! `iofd serve` runs it), stopped on drop; a server task that failed fails the test.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Arc;

use iofd::app::App;
use iofd::config::Config;
use iofd::server::{Listeners, ServerError};

pub struct Server {
    pub base: String,
    pub admin: String,
    pub app: Arc<App>,
    /// The running server, for tests that add tasks to it.
    pub server: Arc<iofd::server::Server>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), ServerError>>>,
}

impl Server {
    /// Demo mode rooted at `data`: demo catalog and partners.
    pub fn demo(data: &Path) -> Server {
        Server::start(Config::for_data_dir(data))
    }

    /// Start with `config`; gateway links point at the server's own random port unless the
    /// config already names a public URL other than the default.
    pub fn start(config: Config) -> Server {
        Server::try_start(config).unwrap_or_else(|e| panic!("the server failed to start: {e:?}"))
    }

    /// Start with `config`, or say why it cannot start.
    pub fn try_start(mut config: Config) -> Result<Server, ServerError> {
        let own_url = config.public_url == format!("http://{}", config.listen);
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listeners = Listeners {
                    public: tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind"),
                    admin: tokio::net::TcpListener::bind("127.0.0.1:0")
                        .await
                        .expect("bind"),
                };
                if own_url {
                    let addr = listeners.public.local_addr().expect("addr");
                    config.public_url = format!("http://{addr}");
                }
                let server = match iofd::server::Server::start(config, listeners).await {
                    Ok(server) => Arc::new(server),
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return Ok(());
                    }
                };
                let _ = ready_tx.send(Ok(server.clone()));
                server
                    .run_until(async {
                        let _ = stop_rx.await;
                    })
                    .await
            })
        });
        let server = ready_rx.recv().expect("the server thread ended")?;
        // Ready means identity is served; tests of gzip forms want those too.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while server.app().artifacts.gzip_pending() > 0 {
            assert!(
                std::time::Instant::now() < deadline,
                "gzip forms within 20 s"
            );
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Ok(Server {
            base: format!("http://{}", server.public_addr()),
            admin: format!("http://{}", server.admin_addr()),
            app: server.app().clone(),
            server,
            stop: Some(stop_tx),
            thread: Some(thread),
        })
    }
    /// Move the server's manual clock (`Config::clock`) by `by`, past the end of the open
    /// change window, and wait until the publisher has cut that window. Generations already
    /// published are logged first, so they belong to the window being cut.
    pub fn pass(&self, by: std::time::Duration) {
        let (app, clock) = (&self.app, &self.app.config.clock);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        let wait = |what: &str, done: &dyn Fn() -> bool| {
            while !done() {
                assert!(std::time::Instant::now() < deadline, "{what} within 20 s");
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
        };
        wait("the change log follows the store", &|| {
            app.changes.generation() == app.store.snapshot().generation()
        });
        assert!(clock.advance(by), "the server runs on a manual clock");
        wait("the window is cut", &|| {
            app.changes.next_deadline(clock.now()) > clock.now()
        });
    }

    pub fn get(&self, path_or_url: &str) -> reqwest::blocking::Response {
        self.request(reqwest::Method::GET, path_or_url, &[])
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path_or_url: &str,
        headers: &[(&str, &str)],
    ) -> reqwest::blocking::Response {
        let url = if path_or_url.starts_with("http") {
            path_or_url.to_string()
        } else {
            format!("{}{}", self.base, path_or_url)
        };
        let mut req = client().request(method, &url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        req.send().unwrap_or_else(|e| panic!("{url}: {e}"))
    }

    /// Stop and wait until every task has stopped; a task that failed fails the test.
    pub fn stop(mut self) {
        if let Err(e) = self.shutdown() {
            panic!("a server task failed: {e:?}");
        }
    }

    /// Stop and wait until every task has stopped; the first task failure, if any.
    pub fn stop_result(mut self) -> Result<(), ServerError> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<(), ServerError> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        match self.thread.take().map(|t| t.join()) {
            None => Ok(()),
            Some(Ok(result)) => result,
            Some(Err(panic)) => std::panic::resume_unwind(panic),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let result = self.shutdown();
        // A test already failing keeps its own message.
        if let (Err(e), false) = (result, std::thread::panicking()) {
            panic!("a server task failed: {e:?}");
        }
    }
}

pub fn client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(std::time::Duration::from_secs(60))
        .build()
        .expect("client")
}

/// `(url, hash)` of every file node of a gateway, in document order.
pub fn gateway_files(gateway: &[u8]) -> Vec<(String, String, Option<String>)> {
    let mut reader = quick_xml::Reader::from_reader(gateway);
    let mut out = Vec::new();
    let mut buf = Vec::new();
    loop {
        match reader.read_event_into(&mut buf).expect("gateway parses") {
            quick_xml::events::Event::Eof => break,
            quick_xml::events::Event::Start(e) | quick_xml::events::Event::Empty(e) => {
                let name = String::from_utf8_lossy(e.name().as_ref()).into_owned();
                let mut url = None;
                let mut hash = None;
                for a in e.attributes().flatten() {
                    let v = a.unescape_value().expect("attribute").into_owned();
                    match a.key.as_ref() {
                        b"url" => url = Some(v),
                        b"hash" => hash = Some(v),
                        _ => {}
                    }
                }
                if let (Some(url), false) = (url, name == "showcase_image") {
                    out.push((name, url, hash));
                }
            }
            _ => {}
        }
        buf.clear();
    }
    out
}

pub fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    md5::Md5::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub fn demo_partners() -> Vec<(String, String, u32)> {
    // (id, token, first shop) of the bundled demo accounts.
    vec![
        (
            "sklep-kowalski".into(),
            "demo-kowalski-4f9c2a7e1b".into(),
            1,
        ),
        ("eu-reseller".into(), "demo-eureseller-8d31b6c05a".into(), 1),
    ]
}

pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().expect("tempdir")
}

pub fn data_path(dir: &tempfile::TempDir) -> PathBuf {
    dir.path().join("data")
}

/// Check files as third-party clients read them: `scripts/check-clients.py` validates each
/// with a second XSD engine (xmlschema) and parses gateways with python-idosell, all in one
/// process. Missing Python or either package fails the test, never skips it. Each file's name
/// must tell its kind (`gateway.xml`, `full.xml`, `full_change<ts>.xml`, ...).
pub fn check_clients(files: &[PathBuf]) {
    assert!(!files.is_empty(), "no files to check");
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/check-clients.py");
    let out = std::process::Command::new("python3")
        .arg(&script)
        .args(files)
        .output()
        .unwrap_or_else(|e| panic!("cannot run python3 {}: {e}", script.display()));
    assert!(
        out.status.success(),
        "third-party clients reject served files ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Write `bytes` as `dir/name` for [`check_clients`] and return the path.
pub fn keep(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    std::fs::create_dir_all(dir).expect("mkdir");
    let path = dir.join(name);
    std::fs::write(&path, bytes).expect("write");
    path
}
