//! How many connections this machine can really hold, worked out at
//! start-up from the limits the kernel will enforce.
//!
//! Why: every connection costs file descriptors, threads and memory maps,
//! and running out of some of them is not an error chatserv can answer:
//! when a new thread cannot map its signal alt-stack guard page
//! (`vm.max_map_count` exhausted, or `RLIMIT_AS`), the Rust runtime
//! *aborts the whole process* (issue 15: "failed to set up alternative
//! stack guard page", then `Aborted`, at ~8,200 connections). So
//! `--max-connections` must never be above what fits; [`Capacity`] says
//! what fits, which limit binds, and which knob raises it.
//!
//! Split in two: [`Limits::read`] gathers the limits from the system
//! (rlimits, `/proc`, the process's cgroups), and [`Capacity::compute`] is
//! pure arithmetic over them, unit-tested with injected limits.

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use rustix::process::{getrlimit, setrlimit, Resource as Rlimit};

/// What one connection costs, in the resources the kernel limits.
///
/// A const the connection design owns: change [`PER_CONNECTION`] when a
/// connection's threads or descriptors change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PerConnection {
    /// File descriptors held while the connection is open.
    pub fds: u64,
    /// Threads running while the connection is open.
    pub threads: u64,
    /// Memory maps each thread adds: its stack and guard page, and the
    /// signal alt-stack and its guard page that the Rust runtime maps.
    pub maps_per_thread: u64,
    /// Further maps a connection may add: large heap buffers (the
    /// permessage-deflate state is a few hundred KiB) are mapped on their
    /// own by malloc. None without deflate: measured, 10,000 connections
    /// of a `--no-deflate` server add exactly 4 maps each (40,074 in all).
    pub extra_maps: u64,
    /// Memory a connection may really use (touched stack, buffers, the
    /// kernel's socket buffers), beyond its reserved stack.
    pub memory_bytes: u64,
}

impl PerConnection {
    /// The design before issue 15: a reader and a writer thread; the
    /// socket plus two `try_clone`s (the split and the shutdown handle).
    /// Kept for the tests that show why it ran out of maps.
    #[cfg(test)]
    pub const TWO_THREADS: PerConnection = PerConnection {
        fds: 3,
        threads: 2,
        maps_per_thread: 4,
        extra_maps: 2,
        memory_bytes: 64 * 1024,
    };

    /// One reader thread and one descriptor per connection, the writes
    /// done by the shared writer pool (whose thread counts in
    /// [`RESERVE_THREADS`]).
    pub const ONE_THREAD: PerConnection = PerConnection {
        fds: 1,
        threads: 1,
        maps_per_thread: 4,
        extra_maps: 0,
        memory_bytes: 64 * 1024,
    };
}

impl PerConnection {
    /// The cost when permessage-deflate may be negotiated: the
    /// compressor's and decompressor's state, each its own map.
    pub const fn with_deflate(self) -> PerConnection {
        PerConnection {
            extra_maps: self.extra_maps + 2,
            ..self
        }
    }
}

/// The cost of a connection in the code as built. Over-stating it only
/// lowers the capacity; under-stating it brings back the abort.
pub const PER_CONNECTION: PerConnection = PerConnection::ONE_THREAD;

/// Descriptors the process may open after start-up besides connections:
/// admin port and its clients, Redis links, an epoll and its waker,
/// files read on the way (`/proc`, DNS), a margin.
pub const RESERVE_FDS: u64 = 32;
/// Threads besides connection threads started after start-up: signal
/// watcher, admin port, cluster threads, a writer pool, a margin.
pub const RESERVE_THREADS: u64 = 16;
/// Maps besides connection threads: malloc arenas growing, libraries
/// loaded later (NSS), large buffers of the non-connection threads.
pub const RESERVE_MAPS: u64 = 2048;
/// Address space besides connections: glibc may reserve 64 MiB per malloc
/// arena (up to 8 per core, though it falls back to sharing one when the
/// limit refuses), the binary, the libraries.
pub const RESERVE_ADDRESS_SPACE: u64 = 512 << 20;
/// Memory besides connections: the hub, the logs, the allocator's slack.
pub const RESERVE_MEMORY: u64 = 64 << 20;
/// Address space of a thread beyond its stack: guard page, the signal
/// alt-stack (`SIGSTKSZ`, up to a few pages with AVX-512 state) and its
/// guard page, glibc's thread descriptor and TLS.
pub const THREAD_OVERHEAD_BYTES: u64 = 64 * 1024;

/// A limit the kernel enforces on chatserv.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resource {
    /// `RLIMIT_NOFILE`: descriptors of this process.
    Nofile,
    /// `fs.file-max`: open files of the whole system.
    FileMax,
    /// `vm.max_map_count`: memory maps of this process.
    MaxMapCount,
    /// `kernel.pid_max`: every thread takes a pid, system-wide.
    PidMax,
    /// `kernel.threads-max`: threads of the whole system.
    ThreadsMax,
    /// `RLIMIT_NPROC`: threads of every process of this (real) user.
    Nproc,
    /// `pids.max` of the process's cgroup (or an ancestor's).
    CgroupPids,
    /// `RLIMIT_AS`: address space of this process (thread stacks count
    /// whole, touched or not).
    AddressSpace,
    /// `MemAvailable` of `/proc/meminfo`.
    Memory,
    /// `memory.max` (`memory.limit_in_bytes` in cgroup v1) of the
    /// process's cgroup (or an ancestor's).
    CgroupMemory,
}

impl Resource {
    /// How the resource is called where it is set.
    pub fn name(self) -> &'static str {
        match self {
            Resource::Nofile => "RLIMIT_NOFILE",
            Resource::FileMax => "fs.file-max",
            Resource::MaxMapCount => "vm.max_map_count",
            Resource::PidMax => "kernel.pid_max",
            Resource::ThreadsMax => "kernel.threads-max",
            Resource::Nproc => "RLIMIT_NPROC",
            Resource::CgroupPids => "cgroup pids.max",
            Resource::AddressSpace => "RLIMIT_AS",
            Resource::Memory => "memory (MemAvailable)",
            Resource::CgroupMemory => "cgroup memory.max",
        }
    }

    /// What an operator does to raise the limit to `value`.
    pub fn knob(self, value: u64) -> String {
        match self {
            Resource::Nofile => format!(
                "raise the hard limit to {value}: ulimit -Hn {value}, LimitNOFILE={value} in \
                 the systemd unit, or nofile in /etc/security/limits.conf"
            ),
            Resource::FileMax => format!("sysctl -w fs.file-max={value}"),
            Resource::MaxMapCount => format!("sysctl -w vm.max_map_count={value}"),
            Resource::PidMax => format!("sysctl -w kernel.pid_max={value} (at most 4194304)"),
            Resource::ThreadsMax => format!("sysctl -w kernel.threads-max={value}"),
            Resource::Nproc => format!(
                "ulimit -u {value} or LimitNPROC={value} in the systemd unit (it counts every \
                 thread of this user)"
            ),
            Resource::CgroupPids => {
                format!("TasksMax={value} in the systemd unit, or write {value} to pids.max")
            }
            Resource::AddressSpace => format!(
                "ulimit -v {} or LimitAS={value} in the systemd unit",
                value.div_ceil(1024)
            ),
            Resource::Memory => format!("free memory or add RAM: {} MiB needed", value >> 20),
            Resource::CgroupMemory => {
                format!("MemoryMax={value} in the systemd unit, or write {value} to memory.max")
            }
        }
    }

    /// What one connection takes of this resource (`stack_size`: the
    /// connection threads' stacks).
    fn per_connection(self, per: &PerConnection, stack_size: u64) -> u64 {
        match self {
            Resource::Nofile | Resource::FileMax => per.fds,
            Resource::MaxMapCount => per.threads * per.maps_per_thread + per.extra_maps,
            Resource::PidMax | Resource::ThreadsMax | Resource::Nproc | Resource::CgroupPids => {
                per.threads
            }
            Resource::AddressSpace => {
                per.threads * (stack_size + THREAD_OVERHEAD_BYTES) + per.memory_bytes
            }
            Resource::Memory | Resource::CgroupMemory => per.memory_bytes,
        }
    }

    /// What the process needs of this resource besides connections.
    fn reserve(self) -> u64 {
        match self {
            Resource::Nofile | Resource::FileMax => RESERVE_FDS,
            Resource::MaxMapCount => RESERVE_MAPS,
            Resource::PidMax | Resource::ThreadsMax | Resource::Nproc | Resource::CgroupPids => {
                RESERVE_THREADS
            }
            Resource::AddressSpace => RESERVE_ADDRESS_SPACE,
            Resource::Memory | Resource::CgroupMemory => RESERVE_MEMORY,
        }
    }
}

impl fmt::Display for Resource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// One enforced, finite limit and how much of it is in use already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    /// Which one.
    pub resource: Resource,
    /// The limit.
    pub max: u64,
    /// Taken already (by this process, or by everyone it is shared with).
    pub used: u64,
}

/// Every limit that applies to this process (unlimited ones are left out).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Limits(pub Vec<Limit>);

/// What fits: the answer of [`Capacity::compute`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Capacity {
    /// Connections that may hold a thread at once, handshaking or live:
    /// the hard ceiling.
    pub total: usize,
    /// Live WebSocket connections that fit, leaving room within `total`
    /// for connections still handshaking.
    pub max_connections: usize,
    /// The limit that gives the smallest `total` (`None`: nothing limits).
    pub bound_by: Option<Resource>,
    /// Connections (handshaking or live) each limit allows.
    pub per_resource: Vec<(Resource, usize)>,
    /// The limits it was computed from, for [`Capacity::knob`].
    limits: Limits,
    per: PerConnection,
    stack_size: u64,
    slack: usize,
}

impl Capacity {
    /// What fits under `limits`, given what a connection costs (`per`,
    /// `stack_size`) and `handshake_slack`, the connections beyond
    /// `max_connections` the server lets handshake (it gets at most an
    /// eighth of `total`, so that a small machine keeps most of its room
    /// for live connections).
    pub fn compute(
        limits: &Limits,
        per: &PerConnection,
        stack_size: usize,
        handshake_slack: usize,
    ) -> Capacity {
        let stack_size = stack_size as u64;
        let per_resource: Vec<(Resource, usize)> = limits
            .0
            .iter()
            .map(|limit| {
                let cost = limit.resource.per_connection(per, stack_size).max(1);
                let free = limit
                    .max
                    .saturating_sub(limit.used)
                    .saturating_sub(limit.resource.reserve());
                let fits = usize::try_from(free / cost).unwrap_or(usize::MAX);
                (limit.resource, fits)
            })
            .collect();
        let (bound_by, total) = per_resource
            .iter()
            .min_by_key(|(_, fits)| *fits)
            .map_or((None, usize::MAX), |&(r, fits)| (Some(r), fits));
        let slack = handshake_slack.min(total / 8);
        Capacity {
            total,
            max_connections: total - slack,
            bound_by,
            per_resource,
            limits: limits.clone(),
            per: *per,
            stack_size,
            slack,
        }
    }

    /// What to do so that `wanted` live connections fit: the binding
    /// resource's knob with the value it needs, or `None` if they fit.
    pub fn knob(&self, wanted: usize) -> Option<String> {
        if wanted <= self.max_connections {
            return None;
        }
        let connections = (wanted as u64).saturating_add(self.slack as u64);
        let advice: Vec<String> = self
            .limits
            .0
            .iter()
            .filter(|limit| {
                self.per_resource
                    .iter()
                    .any(|&(r, fits)| r == limit.resource && fits < wanted + self.slack)
            })
            .map(|limit| {
                let r = limit.resource;
                let needed = limit.used.saturating_add(r.reserve()).saturating_add(
                    connections.saturating_mul(r.per_connection(&self.per, self.stack_size)),
                );
                format!("{r}: {}", r.knob(needed))
            })
            .collect();
        Some(advice.join("; "))
    }
}

impl fmt::Display for Capacity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} connections", self.max_connections)?;
        if let Some(r) = self.bound_by {
            write!(f, " (bound by {r})")?;
        }
        let list: Vec<String> = self
            .per_resource
            .iter()
            .map(|(r, fits)| format!("{r}={fits}"))
            .collect();
        write!(f, "; each limit allows: {}", list.join(", "))
    }
}

/// The `RLIMIT_NOFILE` soft limit before and after [`raise_nofile`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NofileRaise {
    /// The soft limit chatserv was started with (`None`: unlimited).
    pub from: Option<u64>,
    /// The soft limit now.
    pub to: Option<u64>,
}

/// Raise the `RLIMIT_NOFILE` soft limit to the hard limit, as servers do:
/// the soft limit is often a small default kept for old programs that use
/// `select`, which chatserv does not.
pub fn raise_nofile() -> std::io::Result<NofileRaise> {
    let limit = getrlimit(Rlimit::Nofile);
    let from = limit.current;
    if limit.current == limit.maximum {
        return Ok(NofileRaise { from, to: from });
    }
    setrlimit(
        Rlimit::Nofile,
        rustix::process::Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        },
    )?;
    Ok(NofileRaise {
        from,
        to: getrlimit(Rlimit::Nofile).current,
    })
}

impl Limits {
    /// Read every limit that applies to this process. A limit that cannot
    /// be read (no `/proc`, no cgroup) is left out, never guessed.
    pub fn read() -> Limits {
        let mut limits = Vec::new();
        let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
        let mut push = |resource, max: Option<u64>, used: Option<u64>| {
            if let (Some(max), Some(used)) = (max, used) {
                limits.push(Limit {
                    resource,
                    max,
                    used,
                });
            }
        };

        push(
            Resource::Nofile,
            getrlimit(Rlimit::Nofile).current,
            count_dir("/proc/self/fd"),
        );
        push(
            Resource::FileMax,
            read_text("/proc/sys/fs/file-nr").and_then(|t| field(&t, 2)),
            read_text("/proc/sys/fs/file-nr").and_then(|t| field(&t, 0)),
        );
        push(
            Resource::MaxMapCount,
            read_u64("/proc/sys/vm/max_map_count"),
            read_text("/proc/self/maps").map(|t| t.lines().count() as u64),
        );
        let tasks = read_text("/proc/loadavg").and_then(|t| parse_loadavg_tasks(&t));
        push(
            Resource::PidMax,
            read_u64("/proc/sys/kernel/pid_max"),
            tasks,
        );
        push(
            Resource::ThreadsMax,
            read_u64("/proc/sys/kernel/threads-max"),
            tasks,
        );
        let uid = rustix::process::getuid().as_raw();
        if nproc_enforced(uid, &status) {
            push(
                Resource::Nproc,
                getrlimit(Rlimit::Nproc).current,
                Some(user_threads(uid)),
            );
        }
        let vm_size = status_kib(&status, "VmSize:").map(|kib| kib * 1024);
        push(
            Resource::AddressSpace,
            getrlimit(Rlimit::As).current,
            vm_size,
        );
        push(
            Resource::Memory,
            // Counted as a limit with nothing used: what is available now.
            read_text("/proc/meminfo")
                .and_then(|t| status_kib(&t, "MemAvailable:").map(|k| k * 1024)),
            Some(0),
        );
        let groups = read_text("/proc/self/cgroup").unwrap_or_default();
        let cgroup_root = Path::new("/sys/fs/cgroup");
        if let Some(limit) = tightest_cgroup_limit(
            cgroup_root,
            &groups,
            "pids",
            &["pids.max"],
            &["pids.current"],
        ) {
            push(Resource::CgroupPids, Some(limit.0), Some(limit.1));
        }
        if let Some(limit) = tightest_cgroup_limit(
            cgroup_root,
            &groups,
            "memory",
            &["memory.max", "memory.limit_in_bytes"],
            &["memory.current", "memory.usage_in_bytes"],
        ) {
            push(Resource::CgroupMemory, Some(limit.0), Some(limit.1));
        }
        Limits(limits)
    }
}

fn read_text(path: &str) -> Option<String> {
    fs::read_to_string(path).ok()
}

fn read_u64(path: &str) -> Option<u64> {
    parse_limit(&read_text(path)?)
}

fn count_dir(path: &str) -> Option<u64> {
    Some(fs::read_dir(path).ok()?.count() as u64)
}

/// A number, or `None` for `max` (cgroup's "unlimited") and for values
/// so large they mean unlimited (cgroup v1 writes 2^63 rounded to pages).
fn parse_limit(text: &str) -> Option<u64> {
    let n: u64 = text.trim().parse().ok()?;
    (n < 1 << 62).then_some(n)
}

/// The `index`-th whitespace-separated number of `text`.
fn field(text: &str, index: usize) -> Option<u64> {
    parse_limit(text.split_whitespace().nth(index)?)
}

/// Tasks (threads) of the whole system: the `1/234` fourth field of
/// `/proc/loadavg` is running/total scheduling entities.
fn parse_loadavg_tasks(text: &str) -> Option<u64> {
    text.split_whitespace()
        .nth(3)?
        .split('/')
        .nth(1)?
        .parse()
        .ok()
}

/// The number of a `Key:   123 kB` line of `/proc/self/status` or
/// `/proc/meminfo`, in the file's unit.
fn status_kib(text: &str, key: &str) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// The `index`-th number of a `Key:\ta\tb...` line (`Uid:` has real,
/// effective, saved, fs).
fn status_field(text: &str, key: &str, index: usize) -> Option<u64> {
    text.lines()
        .find_map(|line| line.strip_prefix(key))?
        .split_whitespace()
        .nth(index)?
        .parse()
        .ok()
}

/// The kernel does not apply `RLIMIT_NPROC` to root, nor to a process with
/// `CAP_SYS_RESOURCE` or `CAP_SYS_ADMIN`.
fn nproc_enforced(uid: u32, status: &str) -> bool {
    const CAP_SYS_ADMIN: u32 = 21;
    const CAP_SYS_RESOURCE: u32 = 24;
    if uid == 0 {
        return false;
    }
    let caps = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    caps & (1 << CAP_SYS_ADMIN | 1 << CAP_SYS_RESOURCE) == 0
}

/// Threads of every process whose real uid is `uid`: what `RLIMIT_NPROC`
/// counts.
fn user_threads(uid: u32) -> u64 {
    let Ok(dir) = fs::read_dir("/proc") else {
        return 0;
    };
    dir.filter_map(|entry| {
        let entry = entry.ok()?;
        let name = entry.file_name();
        name.to_str()?
            .bytes()
            .all(|b| b.is_ascii_digit())
            .then_some(())?;
        let status = fs::read_to_string(entry.path().join("status")).ok()?;
        (status_field(&status, "Uid:", 0)? == u64::from(uid))
            .then(|| status_field(&status, "Threads:", 0))
            .flatten()
    })
    .sum()
}

/// The cgroup directories of `controller` for this process, from
/// `/proc/self/cgroup` (`text`): the cgroup v1 hierarchy that has it, and
/// the v2 one (`0::/path`), under `root` (`/sys/fs/cgroup`, where v2 may
/// be mounted itself or as `unified`).
fn cgroup_dirs(root: &Path, text: &str, controller: &str) -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    for line in text.lines() {
        let mut parts = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let relative = path.trim_start_matches('/');
        if id == "0" && controllers.is_empty() {
            dirs.push(root.join(relative));
            dirs.push(root.join("unified").join(relative));
        } else if controllers.split(',').any(|c| c == controller) {
            dirs.push(root.join(controller).join(relative));
        }
    }
    dirs
}

/// The tightest `(max, current)` among the process's cgroup and its
/// ancestors (a parent's limit applies to its children too), reading the
/// first of `max_files` / `current_files` present (v2 name, v1 name).
fn tightest_cgroup_limit(
    root: &Path,
    groups: &str,
    controller: &str,
    max_files: &[&str],
    current_files: &[&str],
) -> Option<(u64, u64)> {
    let first = |dir: &Path, names: &[&str]| {
        names
            .iter()
            .find_map(|name| fs::read_to_string(dir.join(name)).ok())
    };
    let mut best: Option<(u64, u64)> = None;
    for leaf in cgroup_dirs(root, groups, controller) {
        let mut dir = Some(leaf.as_path());
        while let Some(d) = dir.filter(|d| d.starts_with(root)) {
            if let (Some(max), Some(current)) = (first(d, max_files), first(d, current_files)) {
                if let (Some(max), Some(current)) = (parse_limit(&max), parse_limit(&current)) {
                    let free = max.saturating_sub(current);
                    if best.is_none_or(|(m, c)| free < m.saturating_sub(c)) {
                        best = Some((max, current));
                    }
                }
            }
            dir = d.parent();
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(list: &[(Resource, u64, u64)]) -> Limits {
        Limits(
            list.iter()
                .map(|&(resource, max, used)| Limit {
                    resource,
                    max,
                    used,
                })
                .collect(),
        )
    }

    const STACK: usize = 64 * 1024;

    #[test]
    fn the_smallest_limit_binds_and_the_slack_comes_out_of_it() {
        // With deflate: 4 thread maps + 2 for the zlib state.
        let per = PerConnection::ONE_THREAD.with_deflate();
        // 65,530 maps, 200 used, 2,048 reserved: 63,282 / 6 per connection.
        let l = limits(&[
            (Resource::Nofile, 1_000_000, 10),
            (Resource::MaxMapCount, 65_530, 200),
            (Resource::PidMax, 32_768, 300),
        ]);
        let c = Capacity::compute(&l, &per, STACK, 256);
        assert_eq!(c.bound_by, Some(Resource::MaxMapCount));
        assert_eq!(c.total, (65_530 - 200 - 2_048) / 6);
        assert_eq!(c.max_connections, c.total - 256);
        assert_eq!(
            c.per_resource,
            vec![
                (Resource::Nofile, 1_000_000 - 10 - 32),
                (Resource::MaxMapCount, 10_547),
                (Resource::PidMax, 32_768 - 300 - 16),
            ]
        );
        // The machine holds the default 10,000 in the new design...
        assert!(c.knob(10_000).is_none());
        // ...and without deflate 4 maps a connection: 63,282 / 4.
        let plain = Capacity::compute(&l, &PerConnection::ONE_THREAD, STACK, 256);
        assert_eq!(plain.total, (65_530 - 200 - 2_048) / 4);
        // ...but not in the two-thread one: 8 thread maps + 2 per connection.
        let old = Capacity::compute(&l, &PerConnection::TWO_THREADS, STACK, 256);
        assert_eq!(old.total, (65_530 - 200 - 2_048) / 10);
        let advice = old.knob(10_000).unwrap();
        // 200 used + 2,048 reserved + (10,000 + 256) x 10.
        assert!(
            advice.contains("sysctl -w vm.max_map_count=104808"),
            "{advice}"
        );
        assert!(!advice.contains("RLIMIT_NOFILE"), "{advice}");
    }

    #[test]
    fn a_low_nofile_gives_a_small_slack() {
        // prlimit --nofile=64: 64 - 5 open - 32 reserved = 27, 3 per conn.
        let l = limits(&[(Resource::Nofile, 64, 5)]);
        let c = Capacity::compute(&l, &PerConnection::TWO_THREADS, STACK, 256);
        assert_eq!(c.total, 9);
        assert_eq!(c.max_connections, 8);
        assert_eq!(c.bound_by, Some(Resource::Nofile));
        assert!(c.to_string().contains("bound by RLIMIT_NOFILE"), "{c}");
        let advice = c.knob(100).unwrap();
        // 5 + 32 + (100 + 1) x 3.
        assert!(advice.contains("ulimit -Hn 340"), "{advice}");
    }

    #[test]
    fn nothing_fits_when_the_reserve_does_not() {
        let l = limits(&[(Resource::Nofile, 20, 5)]);
        let c = Capacity::compute(&l, &PerConnection::ONE_THREAD, STACK, 256);
        assert_eq!((c.total, c.max_connections), (0, 0));
        let l = limits(&[(Resource::Nproc, 100, 200)]);
        assert_eq!(
            Capacity::compute(&l, &PerConnection::ONE_THREAD, STACK, 256).total,
            0
        );
    }

    #[test]
    fn address_space_counts_whole_stacks() {
        // 1 GiB: 512 MiB reserved; (256 KiB + 64 KiB) x 2 + 64 KiB each.
        let l = limits(&[(Resource::AddressSpace, 1 << 30, 0)]);
        let c = Capacity::compute(&l, &PerConnection::TWO_THREADS, 256 * 1024, 256);
        assert_eq!(c.total, (512 << 20) / (704 * 1024));
        assert_eq!(c.bound_by, Some(Resource::AddressSpace));
    }

    #[test]
    fn no_limit_means_unbounded() {
        let c = Capacity::compute(&Limits::default(), &PerConnection::ONE_THREAD, STACK, 256);
        assert_eq!(c.bound_by, None);
        assert_eq!(c.max_connections, usize::MAX - 256);
        assert!(c.knob(1_000_000).is_none());
    }

    #[test]
    fn proc_parsers() {
        assert_eq!(parse_loadavg_tasks("0.53 0.99 1.81 1/85 22382\n"), Some(85));
        assert_eq!(parse_loadavg_tasks("garbage"), None);
        assert_eq!(parse_limit("65530\n"), Some(65_530));
        assert_eq!(parse_limit("max\n"), None);
        assert_eq!(parse_limit("9223372036854771712\n"), None);
        assert_eq!(field("1408\t0\t9223372036854775807\n", 0), Some(1408));
        assert_eq!(field("1408\t0\t9223372036854775807\n", 2), None);
        let status = "Name:\tchatserv\nUid:\t1000\t1001\t1000\t1000\nThreads:\t7\n\
                      VmSize:\t  123456 kB\nCapEff:\t0000000000000000\n";
        assert_eq!(status_field(status, "Uid:", 0), Some(1000));
        assert_eq!(status_field(status, "Uid:", 1), Some(1001));
        assert_eq!(status_field(status, "Threads:", 0), Some(7));
        assert_eq!(status_kib(status, "VmSize:"), Some(123_456));
        let meminfo = "MemTotal:       32000000 kB\nMemAvailable:   24022820 kB\n";
        assert_eq!(status_kib(meminfo, "MemAvailable:"), Some(24_022_820));
        assert!(nproc_enforced(1000, status));
        assert!(!nproc_enforced(0, status));
        // CAP_SYS_RESOURCE (bit 24) exempts too.
        assert!(!nproc_enforced(1000, "CapEff:\t0000000001000000\n"));
    }

    #[test]
    fn cgroup_paths_v1_and_v2() {
        let root = Path::new("/sys/fs/cgroup");
        let v1 = "9:name=systemd:/\n8:pids:/user.slice\n4:memory:/process_api/ddc\n0::/\n";
        assert_eq!(
            cgroup_dirs(root, v1, "pids"),
            vec![
                PathBuf::from("/sys/fs/cgroup/pids/user.slice"),
                PathBuf::from("/sys/fs/cgroup/"),
                PathBuf::from("/sys/fs/cgroup/unified/"),
            ]
        );
        assert_eq!(
            cgroup_dirs(root, v1, "memory")[0],
            PathBuf::from("/sys/fs/cgroup/memory/process_api/ddc")
        );
        let v2 = "0::/system.slice/chatserv.service\n";
        assert_eq!(
            cgroup_dirs(root, v2, "pids")[0],
            PathBuf::from("/sys/fs/cgroup/system.slice/chatserv.service")
        );
    }

    #[test]
    fn the_tightest_cgroup_ancestor_wins() {
        let dir = std::env::temp_dir().join(format!("chatserv-cgroup-{}", std::process::id()));
        let leaf = dir.join("a/b");
        fs::create_dir_all(&leaf).unwrap();
        // The parent allows 100 more, the leaf 1000 more.
        fs::write(dir.join("a/pids.max"), "500\n").unwrap();
        fs::write(dir.join("a/pids.current"), "400\n").unwrap();
        fs::write(leaf.join("pids.max"), "max\n").unwrap();
        fs::write(leaf.join("pids.current"), "10\n").unwrap();
        let got =
            tightest_cgroup_limit(&dir, "0::/a/b\n", "pids", &["pids.max"], &["pids.current"]);
        fs::write(leaf.join("pids.max"), "1000\n").unwrap();
        let got_leaf_limited =
            tightest_cgroup_limit(&dir, "0::/a/b\n", "pids", &["pids.max"], &["pids.current"]);
        fs::write(leaf.join("pids.max"), "50\n").unwrap();
        let got_leaf_tighter =
            tightest_cgroup_limit(&dir, "0::/a/b\n", "pids", &["pids.max"], &["pids.current"]);
        fs::remove_dir_all(&dir).unwrap();
        assert_eq!(got, Some((500, 400)));
        assert_eq!(got_leaf_limited, Some((500, 400)));
        assert_eq!(got_leaf_tighter, Some((50, 10)));
    }

    #[test]
    fn reading_this_process_finds_the_usual_limits() {
        let l = Limits::read();
        let find = |r| l.0.iter().find(|limit| limit.resource == r).copied();
        // RLIMIT_NOFILE is always finite on Linux, and this process has
        // stdio open.
        let nofile = find(Resource::Nofile).expect("RLIMIT_NOFILE");
        assert!(nofile.used >= 3 && nofile.max >= nofile.used, "{nofile:?}");
        let maps = find(Resource::MaxMapCount).expect("vm.max_map_count");
        assert!(maps.used > 10 && maps.max > maps.used, "{maps:?}");
        let pids = find(Resource::PidMax).expect("kernel.pid_max");
        assert!(pids.used >= 1, "{pids:?}");
    }
}
