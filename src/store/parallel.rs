//! Order-preserving parallel maps for the CPU-bound steps of large batches (serializing
//! shards, validating shards at open), on rayon's one process-wide pool.

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_input_order() {
        for n in [0usize, 1, 2, 3, 17, 1000] {
            let out = par_map((0..n).collect(), |x| x * 2);
            assert_eq!(out, (0..n).map(|x| x * 2).collect::<Vec<_>>());
        }
    }
}
