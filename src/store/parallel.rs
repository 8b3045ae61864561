//! Order-preserving parallel maps: for the CPU-bound steps of large batches (serializing
//! shards, validating shards) on rayon's one process-wide pool, and for opening a
//! generation's files, which mostly waits on the disk, on threads of its own.

use rayon::prelude::*;

/// How many worker threads a CPU-bound step uses: the shared pool's.
pub(crate) fn parallelism() -> usize {
    rayon::current_num_threads()
}

/// Apply `f` to every item on the shared pool; results come back in input order. One item
/// (the common single-shard change) runs inline. A panic in `f` is a bug, not bad data: it
/// propagates as is.
pub(crate) fn par_map<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    if items.len() <= 1 {
        return items.into_iter().map(f).collect();
    }
    items.into_par_iter().map(&f).collect()
}

/// Threads for a step that mostly waits on the disk (opening files on the verified record's
/// word reads one header page each): many requests in flight at once let the device work
/// them as one queue instead of one after another, whatever the core count.
const IO_DEPTH: usize = 32;

/// [`par_map`] for steps that wait on the disk: up to [`IO_DEPTH`] scoped threads of their
/// own (not the CPU pool), results in input order.
pub(crate) fn io_map<T, R, F>(items: Vec<T>, f: F) -> Vec<R>
where
    T: Send,
    R: Send,
    F: Fn(T) -> R + Sync,
{
    let threads = IO_DEPTH.min(items.len());
    if threads <= 1 {
        return items.into_iter().map(f).collect();
    }
    let n = items.len();
    let queue = parking_lot::Mutex::new(items.into_iter().enumerate());
    let mut out: Vec<Option<R>> = (0..n).map(|_| None).collect();
    let done = parking_lot::Mutex::new(Vec::with_capacity(n));
    std::thread::scope(|scope| {
        for _ in 0..threads {
            scope.spawn(|| loop {
                let Some((i, item)) = queue.lock().next() else {
                    return;
                };
                let r = f(item);
                done.lock().push((i, r));
            });
        }
    });
    for (i, r) in done.into_inner() {
        out[i] = Some(r);
    }
    out.into_iter().flatten().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order() {
        for n in [0usize, 1, 2, 3, 17, 1000] {
            let out = par_map((0..n).collect(), |x| x * 2);
            assert_eq!(out, (0..n).map(|x| x * 2).collect::<Vec<_>>());
            let out = io_map((0..n).collect(), |x| x * 2);
            assert_eq!(out, (0..n).map(|x| x * 2).collect::<Vec<_>>());
        }
    }
}
