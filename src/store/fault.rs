//! The fault-injection seam of the durability steps. Production builds compile [`check`] to
//! nothing; unit tests arm a [`Plan`] for one directory and the step it names fails there
//! with the error it carries, as a full disk or a failing device would.

/// A durability step of a file publication or of the commit point.
pub(crate) use crate::fsio::Step;

/// Called before each step on `path` (the file, or the directory for [`Step::DirFsync`]).
#[cfg(not(test))]
#[inline(always)]
pub(crate) fn check(_step: Step, _path: &std::path::Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
pub(crate) use armed::{check, count, Plan};

#[cfg(test)]
mod armed {
    use super::Step;
    use parking_lot::Mutex;
    use std::collections::HashMap;
    use std::io;
    use std::path::{Path, PathBuf};

    /// Fail the `nth` (from 0) occurrence of `step` under `dir` with the OS error `errno`,
    /// once; every step under `dir` is counted while the plan is armed.
    #[derive(Debug)]
    pub(crate) struct Plan {
        dir: PathBuf,
    }

    struct Armed {
        dir: PathBuf,
        fail: Option<(Step, usize, i32)>,
        seen: HashMap<Step, usize>,
        fired: bool,
    }

    /// Tests run in parallel threads, each in its own directory: plans are keyed by it.
    static PLANS: Mutex<Vec<Armed>> = Mutex::new(Vec::new());

    fn plans() -> parking_lot::MutexGuard<'static, Vec<Armed>> {
        PLANS.lock()
    }

    impl Plan {
        /// Count the steps under `dir` without failing any (see [`count`]).
        pub(crate) fn observe(dir: &Path) -> Plan {
            Plan::arm(dir, None)
        }

        /// Fail occurrence `nth` of `step` under `dir` with `errno`.
        pub(crate) fn fail(dir: &Path, step: Step, nth: usize, errno: i32) -> Plan {
            Plan::arm(dir, Some((step, nth, errno)))
        }

        fn arm(dir: &Path, fail: Option<(Step, usize, i32)>) -> Plan {
            let dir = dir.to_path_buf();
            let mut plans = plans();
            plans.retain(|a| a.dir != dir);
            plans.push(Armed {
                dir: dir.clone(),
                fail,
                seen: HashMap::new(),
                fired: false,
            });
            Plan { dir }
        }

        /// Whether the planned failure happened.
        pub(crate) fn fired(&self) -> bool {
            plans().iter().any(|a| a.dir == self.dir && a.fired)
        }
    }

    impl Drop for Plan {
        fn drop(&mut self) {
            plans().retain(|a| a.dir != self.dir);
        }
    }

    /// How many times `step` happened under the plan's directory so far.
    pub(crate) fn count(plan: &Plan, step: Step) -> usize {
        plans()
            .iter()
            .find(|a| a.dir == plan.dir)
            .and_then(|a| a.seen.get(&step).copied())
            .unwrap_or(0)
    }

    pub(crate) fn check(step: Step, path: &Path) -> io::Result<()> {
        let mut plans = plans();
        let Some(armed) = plans.iter_mut().find(|a| path.starts_with(&a.dir)) else {
            return Ok(());
        };
        let seen = armed.seen.entry(step).or_insert(0);
        let nth = *seen;
        *seen += 1;
        match armed.fail {
            Some((s, n, errno)) if s == step && n == nth => {
                armed.fired = true;
                Err(io::Error::from_raw_os_error(errno))
            }
            _ => Ok(()),
        }
    }
}
