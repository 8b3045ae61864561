use std::sync::Arc;

use object_store::memory::InMemory;
use object_store::path::Path as ObjectPath;
use object_store::{ObjectStore, ObjectStoreExt};

use super::*;

fn data_dir_with(files: &[(&str, &[u8])]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for (path, bytes) in files {
        let p = dir.path().join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, bytes).unwrap();
    }
    dir
}

/// An in-memory bucket under the prefix `p` and a writer `w` of it.
async fn bucket() -> (Arc<dyn ObjectStore>, ObjectPath, Writer) {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("p");
    let writer = Writer::claim(store.clone(), prefix.clone(), "w".into());
    (store.clone(), prefix, writer.await.unwrap())
}

/// Two writers publish against one manifest sequence at once, in the in-memory store (which
/// serialises conditional writes): every sequence number has exactly one manifest, the one
/// its winner was told it wrote; epochs never go down along the sequence; the older writer
/// ends fenced once the newer has published, and a follower lays out the newest state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_writers_one_winner_per_sequence() {
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let prefix = ObjectPath::from("feeds/eu");
    let old = Writer::claim(store.clone(), prefix.clone(), "old".into())
        .await
        .unwrap();
    let new = Writer::claim(store.clone(), prefix.clone(), "new".into())
        .await
        .unwrap();
    assert_eq!((old.epoch(), new.epoch()), (1, 2));
    let run = |mut writer: Writer, name: &'static str| async move {
        let mut won = Vec::new();
        for i in 0..40u64 {
            let body = format!("{name} {i}");
            let dir = data_dir_with(&[("artifacts/light.xml", body.as_bytes())]);
            let files = scan(dir.path(), &mut HashCache::default()).unwrap();
            match writer.publish(i, files).await {
                Ok(Some(p)) => won.push((p.sequence, body)),
                Ok(None) => unreachable!("every state differs"),
                Err(ScaleError::Fenced { epoch, winner, .. }) => {
                    assert_eq!((name, epoch, winner), ("old", 1, 2));
                    break;
                }
                Err(e) => panic!("{e}"),
            }
            tokio::task::yield_now().await;
        }
        (writer, won)
    };
    let (a, b) = tokio::join!(tokio::spawn(run(old, "old")), tokio::spawn(run(new, "new")));
    let ((mut old, old_won), (_new, new_won)) = (a.unwrap(), b.unwrap());
    assert_eq!(new_won.len(), 40, "the newest epoch is never refused");
    let mut all: Vec<_> = old_won.iter().chain(&new_won).cloned().collect();
    all.sort();
    let sequences: Vec<u64> = all.iter().map(|(s, _)| *s).collect();
    let mut unique = sequences.clone();
    unique.dedup();
    assert_eq!(
        sequences, unique,
        "two writers were told they won one sequence"
    );
    // Each manifest in the store is the one its winner was told of; epochs never go down.
    let mut last_epoch = 0;
    let top = highest(store.as_ref(), &prefix, "manifests")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(top, *sequences.last().unwrap());
    for n in 1..=top {
        // Writers never skip a number: each tries the one after the last it saw taken.
        let m = follower::get_manifest(store.as_ref(), &prefix, n)
            .await
            .unwrap()
            .expect("no gap in the manifest sequence");
        assert!(m.epoch >= last_epoch, "epoch went down at {n}");
        last_epoch = m.epoch;
        let (_, body) = all
            .iter()
            .find(|(s, _)| *s == n)
            .expect("a winner per manifest");
        assert_eq!(m.writer, if m.epoch == 1 { "old" } else { "new" });
        assert!(body.starts_with(&m.writer));
    }
    // The old writer stays fenced for anything it is asked to publish later.
    let dir = data_dir_with(&[("artifacts/light.xml", b"late")]);
    let files = scan(dir.path(), &mut HashCache::default()).unwrap();
    assert!(matches!(
        old.publish(99, files).await,
        Err(ScaleError::Fenced { winner: 2, .. })
    ));
    // A follower takes the newest state: the new writer's last bytes.
    let replica = tempfile::tempdir().unwrap();
    let mut follower = Follower::new(store.clone(), prefix.clone(), replica.path().into());
    assert!(matches!(
        follower.step().await.unwrap(),
        FollowOutcome::Applied { .. }
    ));
    assert_eq!(
        std::fs::read(replica.path().join("artifacts/light.xml")).unwrap(),
        b"new 39"
    );
    assert!(matches!(
        follower.step().await.unwrap(),
        FollowOutcome::UpToDate
    ));
}

/// A follower fetches only what changed, keeps what it has, verifies each object, and a
/// tampered object is refused with its key and path while the data directory keeps the
/// last good bytes. A manifest naming a path outside the published directories is refused.
#[tokio::test]
async fn follower_fetches_new_files_and_refuses_bad_bytes() {
    let (store, prefix, mut writer) = bucket().await;
    let src = data_dir_with(&[
        ("store/MANIFEST", b"m1"),
        ("store/shard-1", b"shard one"),
        ("artifacts/k/light.xml", b"light 1"),
        ("store/LOCK", b""),
        ("artifacts/.light.xml.abc.tmp", b"half"),
    ]);
    let mut cache = HashCache::default();
    let files = scan(src.path(), &mut cache).unwrap();
    let paths: Vec<&str> = files.iter().map(|(f, _)| f.path.as_str()).collect();
    assert_eq!(
        paths,
        ["artifacts/k/light.xml", "store/MANIFEST", "store/shard-1"]
    );
    let p = writer.publish(1, files).await.unwrap().unwrap();
    assert_eq!((p.sequence, p.objects), (1, 3));
    // Unchanged state: no manifest.
    let again = scan(src.path(), &mut cache).unwrap();
    assert_eq!(writer.publish(1, again).await.unwrap(), None);

    let replica = tempfile::tempdir().unwrap();
    let mut follower = Follower::new(store.clone(), prefix.clone(), replica.path().into());
    let FollowOutcome::Applied { objects, .. } = follower.step().await.unwrap() else {
        panic!("no manifest applied");
    };
    assert_eq!(objects, 3);
    assert!(!replica.path().join("store/LOCK").exists());

    std::fs::write(src.path().join("artifacts/k/light.xml"), b"light 2").unwrap();
    let files = scan(src.path(), &mut cache).unwrap();
    let p = writer.publish(2, files).await.unwrap().unwrap();
    assert_eq!((p.sequence, p.objects, p.bytes), (2, 1, 7));
    let FollowOutcome::Applied {
        objects, manifest, ..
    } = follower.step().await.unwrap()
    else {
        panic!("no manifest applied");
    };
    assert_eq!((objects, manifest.generation), (1, 2));
    assert_eq!(
        std::fs::read(replica.path().join("artifacts/k/light.xml")).unwrap(),
        b"light 2"
    );

    // A third state whose object is replaced by other bytes in the store.
    std::fs::write(src.path().join("artifacts/k/light.xml"), b"light 3").unwrap();
    let files = scan(src.path(), &mut cache).unwrap();
    let hash = files[0].0.blake3.clone();
    writer.publish(3, files).await.unwrap().unwrap();
    store
        .put(&object_key(&prefix, &hash), b"tampered".to_vec().into())
        .await
        .unwrap();
    let err = follower.step().await.unwrap_err();
    assert!(
        matches!(&err, ScaleError::HashMismatch { path, .. } if path == "artifacts/k/light.xml"),
        "{err}"
    );
    assert_eq!(follower.current().unwrap().sequence, 2);
    assert_eq!(
        std::fs::read(replica.path().join("artifacts/k/light.xml")).unwrap(),
        b"light 2"
    );

    // A manifest escaping the data directory.
    let evil = Manifest {
        sequence: 4,
        epoch: 1,
        writer: "w".into(),
        generation: 4,
        files: vec![FileEntry {
            path: "artifacts/../../etc/passwd".into(),
            size: 1,
            blake3: hash,
        }],
    };
    let mut f2 = Follower::new(store.clone(), prefix.clone(), replica.path().into());
    store
        .put(
            &manifest_key(&prefix, 4),
            serde_json::to_vec(&evil).unwrap().into(),
        )
        .await
        .unwrap();
    assert!(matches!(f2.step().await, Err(ScaleError::BadPath { .. })));
}

/// A file renamed over another of the same size and mtime (the store's `MANIFEST.prev`,
/// rewritten within one tick of the file system's clock) is hashed again, and bytes that no
/// longer match the scan are never uploaded under the scan's key.
#[tokio::test]
async fn a_file_replaced_with_the_same_size_and_mtime_is_hashed_again() {
    let src = data_dir_with(&[("store/MANIFEST.prev", b"generation 1")]);
    let path = src.path().join("store/MANIFEST.prev");
    let mut cache = HashCache::default();
    let before = scan(src.path(), &mut cache).unwrap();
    let mtime = std::fs::metadata(&path).unwrap().modified().unwrap();

    let tmp = src.path().join("store/.MANIFEST.prev.tmp");
    std::fs::write(&tmp, b"generation 2").unwrap();
    std::fs::File::options()
        .write(true)
        .open(&tmp)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let (stale, _) = before[0].clone();
    std::fs::rename(&tmp, &path).unwrap();
    let after = scan(src.path(), &mut cache).unwrap();
    assert_eq!(after[0].0.size, stale.size);
    assert_ne!(after[0].0.blake3, stale.blake3, "hashed again");

    // The stale entry's upload is refused (scan again), not stored under a wrong key.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let mut writer = Writer::claim(store.clone(), ObjectPath::from("p"), "w".into())
        .await
        .unwrap();
    let err = writer.publish(1, vec![(stale, path)]).await.unwrap_err();
    assert!(matches!(err, ScaleError::Vanished { .. }), "{err}");
}

/// Two writers starting on an empty bucket: the first manifest is claimed create-only, so
/// the writer that did not write it follows it. Whatever the order, an update the older
/// writer acknowledges is in what the newer starts from, or the older is fenced before it
/// acknowledges anything.
#[tokio::test]
async fn two_writers_on_an_empty_bucket() {
    async fn pair(store: &Arc<dyn ObjectStore>) -> (Writer, Writer) {
        let p = ObjectPath::from("p");
        let old = Writer::claim(store.clone(), p.clone(), "old".into());
        let old = old.await.unwrap();
        let new = Writer::claim(store.clone(), p, "new".into()).await.unwrap();
        (old, new)
    }
    let light = |body: &[u8]| {
        let dir = data_dir_with(&[("artifacts/light.xml", body)]);
        let files = scan(dir.path(), &mut HashCache::default()).unwrap();
        (dir, files)
    };

    // Both take over before either publishes: the older is fenced at its first publication,
    // never acknowledging a state the newer did not start from.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (mut old, mut new) = pair(&store).await;
    let (d_old, d_new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(old.take_over(d_old.path()).await.unwrap(), None);
    let bootstrap = new.take_over(d_new.path()).await.unwrap().unwrap();
    assert_eq!((bootstrap.sequence, bootstrap.epoch), (1, 1));
    assert!(bootstrap.files.is_empty());
    let (_keep, files) = light(b"old acknowledged");
    assert!(matches!(
        old.publish(1, files).await,
        Err(ScaleError::Fenced { winner: 2, .. })
    ));
    let (_keep, files) = light(b"new");
    assert_eq!(new.publish(1, files).await.unwrap().unwrap().sequence, 3);

    // The older publishes (and acknowledges) before the newer takes over: the newer starts
    // from that state.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (mut old, mut new) = pair(&store).await;
    let (d_old, d_new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(old.take_over(d_old.path()).await.unwrap(), None);
    let (_keep, files) = light(b"old acknowledged");
    assert_eq!(old.publish(1, files).await.unwrap().unwrap().sequence, 2);
    new.take_over(d_new.path()).await.unwrap().unwrap();
    assert_eq!(
        std::fs::read(d_new.path().join("artifacts/light.xml")).unwrap(),
        b"old acknowledged"
    );

    // The newer writes the first manifest: the older, starting after, is fenced at once.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (mut old, mut new) = pair(&store).await;
    let (d_old, d_new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    assert_eq!(new.take_over(d_new.path()).await.unwrap(), None);
    assert!(matches!(
        old.take_over(d_old.path()).await,
        Err(ScaleError::Fenced { winner: 2, .. })
    ));

    // Racing: exactly one writes the first manifest, and the sequence's epochs never go
    // down.
    let store: Arc<dyn ObjectStore> = Arc::new(InMemory::new());
    let (mut old, mut new) = pair(&store).await;
    let (d_old, d_new) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (a, b) = tokio::join!(old.take_over(d_old.path()), new.take_over(d_new.path()));
    assert!(b.is_ok(), "the newest epoch is never refused");
    let first = follower::get_manifest(store.as_ref(), &ObjectPath::from("p"), 1)
        .await
        .unwrap()
        .unwrap();
    assert!(first.files.is_empty());
    match (first.epoch, a) {
        (1, Ok(None)) | (2, Err(ScaleError::Fenced { .. })) => {}
        (epoch, a) => panic!("first manifest by epoch {epoch}, the older writer got {a:?}"),
    }
}

/// A file larger than a part goes up in parts and comes down streamed, the same bytes; one
/// whose bytes changed since the scan is refused mid-upload and leaves no object behind; a
/// download that is not the manifest's bytes leaves the destination as it was.
#[tokio::test]
async fn big_files_go_up_in_parts_and_come_down_streamed() {
    let (store, prefix, writer) = bucket().await;
    let mut writer = writer.with_part_size(4096);
    let big: Vec<u8> = (0..10_000u32).flat_map(|i| i.to_le_bytes()).collect();
    let src = data_dir_with(&[("artifacts/k/full.xml", &big), ("store/MANIFEST", b"m")]);
    let mut cache = HashCache::default();
    let files = scan(src.path(), &mut cache).unwrap();
    let p = writer.publish(1, files.clone()).await.unwrap().unwrap();
    assert_eq!((p.objects, p.bytes), (2, big.len() as u64 + 1));
    let key = object_key(&prefix, &files[0].0.blake3);
    let stored = store.get(&key).await.unwrap().bytes().await.unwrap();
    assert_eq!(&stored[..], &big[..]);

    let replica = tempfile::tempdir().unwrap();
    let mut follower = Follower::new(store.clone(), prefix.clone(), replica.path().into());
    follower.step().await.unwrap();
    assert_eq!(
        std::fs::read(replica.path().join("artifacts/k/full.xml")).unwrap(),
        big
    );

    // Same size, other bytes: the upload stops at the hash and aborts.
    let mut other = big.clone();
    other[9_000] ^= 1;
    std::fs::write(src.path().join("artifacts/k/full.xml"), &other).unwrap();
    let (stale, path) = files[0].clone();
    let (fresh, _) = scan(src.path(), &mut HashCache::default()).unwrap()[0].clone();
    let stale = FileEntry {
        blake3: fresh.blake3.clone(),
        ..stale
    };
    let mut w2 = Writer::claim(store.clone(), prefix.clone(), "w2".into())
        .await
        .unwrap()
        .with_part_size(4096);
    std::fs::write(&path, &big).unwrap();
    let err = w2.publish(2, vec![(stale, path)]).await.unwrap_err();
    assert!(matches!(err, ScaleError::Vanished { .. }), "{err}");
    let gone = store.head(&object_key(&prefix, &fresh.blake3)).await;
    assert!(matches!(gone, Err(object_store::Error::NotFound { .. })));

    // An object whose bytes are not its name's: the replica's copy stays, no temporary left.
    let dest = replica.path().join("artifacts/k/full.xml");
    store.put(&key, other.clone().into()).await.unwrap();
    let entry = &files[0].0;
    let err = transfer::download(store.as_ref(), &key, entry, &dest)
        .await
        .unwrap_err();
    assert!(matches!(err, ScaleError::HashMismatch { .. }), "{err}");
    assert_eq!(std::fs::read(&dest).unwrap(), big);
    let names: Vec<_> = std::fs::read_dir(replica.path().join("artifacts/k"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["full.xml"]);
}

/// The collector removes manifests past the retention and the objects only they named,
/// keeps what the kept manifests name and what is younger than the grace, removes nothing
/// while another writer's manifest is above its own, and a replica left behind the removed
/// manifests jumps to the newest.
#[tokio::test]
async fn the_collector_keeps_what_kept_manifests_name() {
    let (store, prefix, mut writer) = bucket().await;
    let src = data_dir_with(&[("store/shard-1", b"shared"), ("artifacts/light.xml", b"0")]);
    let mut cache = HashCache::default();
    let mut hashes = Vec::new();
    let replica = tempfile::tempdir().unwrap();
    let mut behind = Follower::new(store.clone(), prefix.clone(), replica.path().into());
    for i in 1..=5u64 {
        std::fs::write(src.path().join("artifacts/light.xml"), format!("light {i}")).unwrap();
        let files = scan(src.path(), &mut cache).unwrap();
        hashes.push(files[0].0.blake3.clone());
        writer.publish(i, files).await.unwrap().unwrap();
        if i == 1 {
            behind.step().await.unwrap();
        }
    }
    let objects = |store: Arc<dyn ObjectStore>| async move {
        let listed = store.list_with_delimiter(Some(&"p/objects".into())).await;
        let mut names: Vec<String> = listed
            .unwrap()
            .objects
            .iter()
            .map(|m| m.location.filename().unwrap().to_string())
            .collect();
        names.sort();
        names
    };
    let later = std::time::SystemTime::now() + std::time::Duration::from_secs(7200);
    let keep_two = Retention {
        manifests: 2,
        ..Retention::default()
    };
    // Within the age and the grace nothing goes.
    let now = std::time::SystemTime::now();
    let c = writer.collect(keep_two, now).await.unwrap();
    assert_eq!((c.manifests, c.objects, c.kept_objects), (0, 0, 6));

    let c = writer.collect(keep_two, later).await.unwrap();
    assert_eq!((c.manifests, c.objects, c.kept_objects), (3, 3, 3));
    let mut expected: Vec<String> = hashes[3..].to_vec();
    let shared = blake3::hash(b"shared").to_hex().to_string();
    expected.push(shared);
    expected.sort();
    assert_eq!(objects(store.clone()).await, expected);
    for n in 1..=3 {
        let m = follower::get_manifest(store.as_ref(), &prefix, n).await;
        assert_eq!(m.unwrap(), None, "manifest {n} removed");
    }

    // The replica at manifest 1 finds 2 gone and takes the newest.
    let FollowOutcome::Applied { manifest, .. } = behind.step().await.unwrap() else {
        panic!("the replica stayed behind");
    };
    assert_eq!(manifest.sequence, 5);
    assert_eq!(
        std::fs::read(replica.path().join("artifacts/light.xml")).unwrap(),
        b"light 5"
    );

    // A state returning to bytes whose object was removed uploads it again.
    std::fs::write(src.path().join("artifacts/light.xml"), "light 1").unwrap();
    let files = scan(src.path(), &mut cache).unwrap();
    let p = writer.publish(6, files).await.unwrap().unwrap();
    assert_eq!(p.objects, 1, "the removed object goes up again");
    assert!(store.head(&object_key(&prefix, &hashes[0])).await.is_ok());

    // Another writer's manifest above this one's: nothing is removed.
    let mut newer = Writer::claim(store.clone(), prefix.clone(), "new".into())
        .await
        .unwrap();
    let taken = tempfile::tempdir().unwrap();
    newer.take_over(taken.path()).await.unwrap();
    let c = writer.collect(keep_two, later).await.unwrap();
    assert_eq!(c, Collected::default());
}

/// A replica removes the files the writer removed (after its delay, at its next step), holds
/// those named again, and leaves files no manifest named alone.
#[tokio::test]
async fn a_replica_removes_what_the_writer_removed() {
    let (store, prefix, mut writer) = bucket().await;
    let src = data_dir_with(&[
        ("changes/a", b"a"),
        ("changes/b", b"b"),
        ("artifacts/light.xml", b"1"),
    ]);
    let mut cache = HashCache::default();
    let replica = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(replica.path().join("changes")).unwrap();
    std::fs::write(replica.path().join("changes/local"), b"mine").unwrap();
    let mut follower =
        Follower::new(store.clone(), prefix.clone(), replica.path().into()).dropping_at_once();
    writer
        .publish(1, scan(src.path(), &mut cache).unwrap())
        .await
        .unwrap();
    follower.step().await.unwrap();
    std::fs::remove_file(src.path().join("changes/a")).unwrap();
    std::fs::remove_file(src.path().join("changes/b")).unwrap();
    std::fs::write(src.path().join("artifacts/light.xml"), b"2").unwrap();
    writer
        .publish(2, scan(src.path(), &mut cache).unwrap())
        .await
        .unwrap();
    follower.step().await.unwrap();
    assert!(
        replica.path().join("changes/a").exists(),
        "not before the next step"
    );
    // `b` comes back in a later manifest: the replica holds it again.
    std::fs::write(src.path().join("changes/b"), b"b").unwrap();
    writer
        .publish(3, scan(src.path(), &mut cache).unwrap())
        .await
        .unwrap();
    follower.step().await.unwrap();
    assert!(matches!(
        follower.step().await.unwrap(),
        FollowOutcome::UpToDate
    ));
    let mut left: Vec<String> = std::fs::read_dir(replica.path().join("changes"))
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    left.sort();
    assert_eq!(left, ["b", "local"]);
    assert_eq!(
        std::fs::read(replica.path().join("artifacts/light.xml")).unwrap(),
        b"2"
    );
}
