//! The running server: one owner for every long-lived activity of the origin.
//!
//! [`Server::start`] opens the [`App`] and starts, each as a task it supervises, the public
//! and admin listeners (each drains its connections on shutdown), the publisher, the
//! partners-file watcher, the drop-folder watcher, the store's group committer and the purge
//! hook's sender. A task that fails (returns an error or panics) shuts the rest down, and
//! [`Server::shutdown`] returns that error, so a listener that dies in a test fails the test.
//!
//! Shutdown runs in two rounds: first the listeners stop accepting and drain, and the
//! publisher and watchers stop; then, with no request left that could queue an ingest, the
//! committer, the drop-folder watcher and the purge sender stop.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::activity::{self, Activity};
use crate::app::{App, AppError, Workers};
use crate::config::{Config, Role};
use crate::http::{self, Surface};
use crate::inbox::InboxError;

/// The two listeners of a server, already bound (tests bind `127.0.0.1:0`).
pub struct Listeners {
    /// Partner feeds.
    pub public: TcpListener,
    /// Health, readiness, metrics and the ingest API.
    pub admin: TcpListener,
}

impl Listeners {
    /// Bind the addresses `config` names.
    pub async fn bind(config: &Config) -> Result<Listeners, ServerError> {
        let bind = |addr: SocketAddr| async move {
            TcpListener::bind(addr)
                .await
                .map_err(|source| ServerError::Bind { addr, source })
        };
        Ok(Listeners {
            public: bind(config.listen).await?,
            admin: bind(config.admin_listen).await?,
        })
    }
}

/// Why the server could not start, or the first failure of one of its tasks.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot listen on {addr}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
    #[error(transparent)]
    Open(#[from] AppError),
    #[error("cannot watch the drop folder")]
    Inbox(#[source] InboxError),
    #[error(transparent)]
    Signing(#[from] crate::signing::SigningError),
    #[error("object store")]
    ScaleOut(#[source] crate::scaleout::ScaleError),
    #[error("the start-up task did not finish")]
    StartUp(#[source] tokio::task::JoinError),
    #[error("the {task} failed")]
    Task {
        task: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    #[error("the {task} panicked: {message}")]
    Panicked { task: &'static str, message: String },
}

/// A running server (see the module documentation).
pub struct Server {
    app: Arc<App>,
    public_addr: SocketAddr,
    admin_addr: SocketAddr,
    /// Stops the listeners, the publisher, the watchers and the tasks of [`Server::spawn`].
    stop: CancellationToken,
    front: TaskTracker,
    /// Stops the purge sender; the committer and the drop folder are stopped by hand, as they
    /// run on threads.
    core_stop: CancellationToken,
    core: TaskTracker,
    inbox_stop: Arc<AtomicBool>,
    /// Partner fetches; saved periodically and once the listeners have drained.
    activity: Arc<Activity>,
    /// The first task failure, returned by [`Server::shutdown`].
    failure: Arc<Mutex<Option<ServerError>>>,
    runtime: tokio::runtime::Handle,
    /// What the writer has made durable in the object store, when it has one.
    durable: Option<crate::scaleout::Durable>,
    /// What a replica's follower has reached, when this node is one.
    following: Option<tokio::sync::watch::Receiver<crate::scaleout::Following>>,
}

/// Serve `config` on `listeners` until `shutdown` resolves or a task fails; then stop every
/// task and return the first failure.
pub async fn run(
    config: Config,
    listeners: Listeners,
    shutdown: impl Future<Output = ()>,
) -> Result<(), ServerError> {
    Server::start(config, listeners)
        .await?
        .run_until(shutdown)
        .await
}

impl Server {
    /// Open the app (blocking work, off the runtime's workers) and start every task.
    pub async fn start(config: Config, listeners: Listeners) -> Result<Server, ServerError> {
        let public_addr = listeners
            .public
            .local_addr()
            .map_err(|source| ServerError::Bind {
                addr: config.listen,
                source,
            })?;
        let admin_addr = listeners
            .admin
            .local_addr()
            .map_err(|source| ServerError::Bind {
                addr: config.admin_listen,
                source,
            })?;
        // A node starts from the newest manifest, laid out in its data directory before the
        // store opens it: a replica must find one; a writer claims an epoch and takes over
        // from it (everything acknowledged), or finds none as the first writer.
        let (mut uploader, mut follower) = (None, None);
        match (&config.object_store, config.role) {
            (Some(target), Role::Writer) => {
                uploader = Some(
                    crate::scaleout::Uploader::start(target, config.data_dir.clone())
                        .await
                        .map_err(ServerError::ScaleOut)?,
                )
            }
            (Some(target), Role::Replica) => {
                follower = Some(
                    crate::scaleout::sync_replica(target, &config.data_dir)
                        .await
                        .map_err(ServerError::ScaleOut)?,
                )
            }
            (None, _) => {}
        }
        let (app, workers) = tokio::task::spawn_blocking(move || App::open(config))
            .await
            .map_err(ServerError::StartUp)??;
        let Workers {
            inbox,
            committer,
            purge,
            publisher,
        } = workers;
        let inbox_stop = Arc::new(AtomicBool::new(false));
        let activity = Arc::new(Activity::open(
            app.config.data_dir.join(activity::FILE_NAME),
            app.config.clock.clone(),
            app.config.partner_silent_after,
        ));
        let server = Server {
            app: app.clone(),
            public_addr,
            admin_addr,
            stop: CancellationToken::new(),
            front: TaskTracker::new(),
            core_stop: CancellationToken::new(),
            core: TaskTracker::new(),
            inbox_stop: inbox_stop.clone(),
            activity: activity.clone(),
            failure: Arc::default(),
            runtime: tokio::runtime::Handle::current(),
            durable: None,
            following: None,
        };

        // With an object store, a dropped file is done only once its generation is there.
        let inbox = match &uploader {
            Some((_, durable)) => inbox.with_durable_gate(durable_gate(durable.clone())),
            None => inbox,
        };
        let watch_inbox = inbox
            .watcher(inbox_stop, Arc::default())
            .map_err(ServerError::Inbox)?;
        server.supervise(
            &server.core,
            "drop-folder watcher",
            tokio::task::spawn_blocking(move || {
                watch_inbox();
                Ok(())
            }),
        );
        server.supervise(
            &server.core,
            "store committer",
            tokio::task::spawn_blocking(move || {
                committer.run();
                Ok(())
            }),
        );
        if let Some(purge) = purge {
            let stop = server.core_stop.clone();
            server.supervise(
                &server.core,
                "purge sender",
                tokio::spawn(async move {
                    // What is still queued at shutdown is not sent: the cache then serves
                    // those files until their max-age runs out, as without a hook.
                    stop.run_until_cancelled(purge.run()).await;
                    Ok(())
                }),
            );
        }

        let mut server = server;
        let durable = match (uploader, app.config.role) {
            (Some((uploader, durable)), _) => {
                let (store, metrics) = (app.store.clone(), app.metrics.clone());
                // Stopped with the committer, after the listeners drained: acks in flight
                // still get their upload.
                let stop = server.core_stop.clone();
                server.supervise(
                    &server.core,
                    "object store uploader",
                    tokio::spawn(async move {
                        uploader.run(store, metrics, stop).await;
                        Ok(())
                    }),
                );
                Some(durable)
            }
            (None, Role::Replica) if app.config.object_store.is_some() => {
                app.store.refuse_writes(
                    "this node is a read replica: send writes to the writer".to_string(),
                );
                if let Some(follower) = follower {
                    let (tx, rx) = tokio::sync::watch::channel(Default::default());
                    server.following = Some(rx);
                    let (store, stop) = (app.store.clone(), server.stop.clone());
                    let (metrics, demand) = (app.metrics.clone(), app.demand.clone());
                    let republish = move || demand.want_republish();
                    server.supervise(
                        &server.front,
                        "replica follower",
                        tokio::spawn(async move {
                            crate::scaleout::task::follow(
                                follower, store, tx, metrics, republish, stop,
                            )
                            .await;
                            Ok(())
                        }),
                    );
                }
                None
            }
            (None, _) => None,
        };
        // After the app has the data directory (and its lock): a generated key lives there.
        let signer = crate::signing::Signer::resolve(
            &app.config.signing,
            &app.config.data_dir,
            app.config.clock.clone(),
        )?;
        // The listeners see the handles they serve from, not the app.
        let mut state = http::State::new(
            http::Handles {
                demand: app.demand.clone(),
                artifacts: app.artifacts.clone(),
                store: app.store.clone(),
                committer: app.committer.clone(),
                metrics: app.metrics.clone(),
                readiness: app.readiness.clone(),
                activity: activity.clone(),
                signer,
            },
            &app.config,
        );
        state.durable = durable.clone();
        state.store_health = match (&durable, &server.following) {
            (Some(d), _) => Some(crate::scaleout::StoreHealth::Writer(d.clone())),
            (None, Some(rx)) => Some(crate::scaleout::StoreHealth::Replica(rx.clone())),
            (None, None) => None,
        };
        server.durable = durable;
        let state = Arc::new(state);
        for (listener, surface, task) in [
            (listeners.public, Surface::Public, "public listener"),
            (listeners.admin, Surface::Admin, "admin listener"),
        ] {
            let serving = http::serve(
                listener,
                state.clone(),
                surface,
                server.stop.clone().cancelled_owned(),
            );
            server.supervise(
                &server.front,
                task,
                tokio::spawn(async move {
                    serving.await.map_err(|e| ServerError::Task {
                        task,
                        source: Box::new(e),
                    })
                }),
            );
        }
        let publishing = publisher.run(server.stop.clone().cancelled_owned());
        server.supervise(
            &server.front,
            "publisher",
            tokio::spawn(async move {
                publishing.await;
                Ok(())
            }),
        );
        let watching = app
            .clone()
            .run_partners_watcher(server.stop.clone().cancelled_owned());
        server.supervise(
            &server.front,
            "partners watcher",
            tokio::spawn(async move {
                watching.await;
                Ok(())
            }),
        );
        // Re-hash the snapshot files the open trusted from the verified record, paced, on a
        // thread of its own; a mismatch makes /readyz not ready (see `store::scrub`).
        let (store, metrics, stop) = (app.store.clone(), app.metrics.clone(), server.stop.clone());
        let scrub = app.config.scrub;
        server.supervise(
            &server.front,
            "store scrub",
            tokio::task::spawn_blocking(move || {
                store.scrub(scrub, &stop, |seen| match seen {
                    crate::store::scrub::Scrubbed::Good { bytes, .. } => {
                        metrics.scrubbed(bytes, false)
                    }
                    crate::store::scrub::Scrubbed::Damaged { bytes, .. } => {
                        metrics.scrubbed(bytes, true)
                    }
                });
                Ok(())
            }),
        );
        let saving = save_activity(app.clone(), activity, server.stop.clone());
        server.supervise(&server.front, "activity saver", tokio::spawn(saving));
        Ok(server)
    }

    /// What the writer has made durable in its object store (`None` without one).
    pub fn durable(&self) -> Option<&crate::scaleout::Durable> {
        self.durable.as_ref()
    }

    /// What a replica's follower has reached (`None` unless a replica).
    pub fn following(&self) -> Option<crate::scaleout::Following> {
        self.following.as_ref().map(|rx| rx.borrow().clone())
    }

    /// The app the tasks serve.
    pub fn app(&self) -> &Arc<App> {
        &self.app
    }

    /// Where the public listener accepts.
    pub fn public_addr(&self) -> SocketAddr {
        self.public_addr
    }

    /// Where the admin listener accepts.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Run `task` beside the others until shutdown (it is then dropped); its error or panic
    /// shuts the server down like any other task's. Callable from outside the runtime.
    pub fn spawn<F, E>(&self, name: &'static str, task: F)
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        let stop = self.stop.clone();
        let handle = self.runtime.spawn(async move {
            match stop.run_until_cancelled(task).await {
                Some(Err(e)) => Err(ServerError::Task {
                    task: name,
                    source: e.into(),
                }),
                Some(Ok(())) | None => Ok(()),
            }
        });
        let _guard = self.runtime.enter();
        self.supervise(&self.front, name, handle);
    }

    /// Resolves once shutdown has begun: asked for, or a task failed.
    pub async fn stopping(&self) {
        self.stop.cancelled().await
    }

    /// Serve until `shutdown` resolves or a task fails, then shut down.
    pub async fn run_until(&self, shutdown: impl Future<Output = ()>) -> Result<(), ServerError> {
        tokio::select! {
            _ = shutdown => {}
            _ = self.stop.cancelled() => {}
        }
        self.shutdown().await
    }

    /// Stop every task (see the module documentation for the order) and return the first
    /// task failure, if any.
    pub async fn shutdown(&self) -> Result<(), ServerError> {
        self.stop.cancel();
        self.front.close();
        self.front.wait().await;
        // No request is left to count: the last activity is saved.
        let activity = self.activity.clone();
        match tokio::task::spawn_blocking(move || activity.save()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "partner activity not saved")
            }
            Err(e) => tracing::warn!(error = %e, "partner activity not saved"),
        }
        self.stop_core();
        self.core.close();
        self.core.wait().await;
        match self.failure.lock().take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }

    fn stop_core(&self) {
        self.core_stop.cancel();
        self.inbox_stop.store(true, Ordering::Release);
        // Requests queued before this are committed first.
        self.app.committer.stop();
    }

    /// Watch `handle` on `tracker`: a failure is recorded (the first one is kept) and starts
    /// the shutdown.
    fn supervise(
        &self,
        tracker: &TaskTracker,
        task: &'static str,
        handle: JoinHandle<Result<(), ServerError>>,
    ) {
        let failure = self.failure.clone();
        let stop = self.stop.clone();
        tracker.spawn(async move {
            let error = match handle.await {
                Ok(Ok(())) => return,
                Ok(Err(e)) => e,
                Err(e) if e.is_panic() => ServerError::Panicked {
                    task,
                    message: panic_message(e.into_panic()),
                },
                // Cancelled: only when the runtime itself shuts down.
                Err(_) => return,
            };
            tracing::error!(task, error = %error, "a server task failed; shutting down");
            failure.lock().get_or_insert(error);
            stop.cancel();
        });
    }
}

impl Drop for Server {
    /// A server dropped without [`Server::shutdown`] still stops its tasks (without waiting),
    /// so the threads holding the store end and the runtime can shut down.
    fn drop(&mut self) {
        self.stop.cancel();
        self.stop_core();
    }
}

/// The drop folder's wait for the object store: the ingest API's wait, from the folder's
/// blocking thread.
fn durable_gate(durable: crate::scaleout::Durable) -> crate::inbox::DurableGate {
    let runtime = tokio::runtime::Handle::current();
    Arc::new(move |generation| {
        runtime.block_on(durable.wait(generation, crate::scaleout::task::DURABLE_TIMEOUT))
    })
}

/// Save the partner activity every [`activity::SAVE_INTERVAL`] of the app's clock until
/// `stop`, forgetting accounts no longer in the partners file. A failed save is logged and
/// tried again next time: the activity in memory is still whole.
async fn save_activity(
    app: Arc<App>,
    activity: Arc<Activity>,
    stop: CancellationToken,
) -> Result<(), ServerError> {
    let clock = app.config.clock.clone();
    let interval = jiff::SignedDuration::try_from(activity::SAVE_INTERVAL)
        .unwrap_or(jiff::SignedDuration::from_secs(60));
    loop {
        let next = clock
            .now()
            .saturating_add(interval)
            .unwrap_or(jiff::Timestamp::MAX);
        tokio::select! {
            _ = stop.cancelled() => return Ok(()),
            _ = clock.sleep_until(next) => {}
        }
        let partners = app.demand.partners();
        activity.retain(&|id| partners.get(id).is_some());
        let saving = activity.clone();
        match tokio::task::spawn_blocking(move || saving.save()).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %e, cause = ?std::error::Error::source(&e), "partner activity not saved")
            }
            Err(e) => tracing::warn!(error = %e, "partner activity not saved"),
        }
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(not a string)".to_string(), |s| s.to_string()),
    }
}
