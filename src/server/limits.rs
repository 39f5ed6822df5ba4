//! Process limits checked at start: `maxclients` must fit the open-file
//! limit, or new clients would hang when `accept` fails with EMFILE
//! instead of getting Redis's "max number of clients reached". As Redis
//! does, the node first tries to raise its soft limit, and if it cannot,
//! lowers `maxclients` and says so.

use tracing::warn;

/// Descriptors kept for everything but clients (listeners, log, files).
const RESERVED_FDS: u64 = 32;

/// Descriptors each configured peer may hold (its dialed and accepted
/// links).
const FDS_PER_PEER: u64 = 2;

/// What fitting `maxclients` to the file limit decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fitted {
    pub maxclients: usize,
    /// The soft open-file limit in force afterwards.
    pub open_files: u64,
}

/// The descriptors `maxclients` clients and `peers` peers need.
pub fn needed_fds(maxclients: usize, peers: usize) -> u64 {
    maxclients as u64 + RESERVED_FDS + FDS_PER_PEER * peers as u64
}

/// The `maxclients` that fits `open_files` descriptors (at least 1).
pub fn clients_that_fit(open_files: u64, peers: usize) -> usize {
    open_files
        .saturating_sub(RESERVED_FDS + FDS_PER_PEER * peers as u64)
        .max(1) as usize
}

/// Raises the soft open-file limit towards what `maxclients` needs (up to
/// the hard limit) and returns the `maxclients` that fits, warning when it
/// had to be lowered.
pub fn fit_maxclients(maxclients: usize, peers: usize) -> Fitted {
    let needed = needed_fds(maxclients, peers);
    let Some((soft, hard)) = open_file_limit() else {
        return Fitted {
            maxclients,
            open_files: needed,
        };
    };
    let open_files = if soft >= needed {
        soft
    } else {
        let target = needed.min(hard);
        if target > soft && set_open_file_limit(target, hard) {
            target
        } else {
            soft
        }
    };
    if open_files >= needed {
        return Fitted {
            maxclients,
            open_files,
        };
    }
    let fitted = clients_that_fit(open_files, peers).min(maxclients);
    warn!(
        "maxclients {maxclients} needs {needed} open files but the limit is {open_files} \
         (hard limit {hard}); maxclients lowered to {fitted} (raise `ulimit -n` to keep it)"
    );
    Fitted {
        maxclients: fitted,
        open_files,
    }
}

fn open_file_limit() -> Option<(u64, u64)> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let ok = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0;
    ok.then_some((limit.rlim_cur, limit.rlim_max))
}

fn set_open_file_limit(soft: u64, hard: u64) -> bool {
    let limit = libc::rlimit {
        rlim_cur: soft,
        rlim_max: hard,
    };
    // SAFETY: setrlimit only reads the struct we pass.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_get_what_is_left_after_the_reserve_and_the_peers() {
        assert_eq!(needed_fds(10_000, 0), 10_032);
        assert_eq!(needed_fds(100, 3), 138);
        assert_eq!(clients_that_fit(1024, 0), 992);
        assert_eq!(clients_that_fit(1024, 2), 988);
        assert_eq!(clients_that_fit(20, 0), 1, "never below one client");
    }

    #[test]
    fn a_maxclients_that_fits_is_kept() {
        let (soft, _) = open_file_limit().expect("getrlimit works here");
        let small = clients_that_fit(soft, 0).min(16);
        assert_eq!(fit_maxclients(small, 0).maxclients, small);
    }
}
