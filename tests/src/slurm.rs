//! The project's one-machine Slurm cluster (`scripts/slurm-cluster.sh`) for tests: taken under
//! an exclusive lock (the cluster uses fixed ports and, in cgroup mode, the `slurm_<node>`
//! cgroups, so only one can run per machine), started in a temporary state directory, and
//! stopped on drop (jobs cancelled, orphans killed, job cgroups removed), also when the test
//! fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::{repo_root, require_program};

/// The lock file every test that starts the cluster takes.
pub fn cluster_lock_path() -> PathBuf {
    std::env::temp_dir().join("hpcmon-slurm-cluster.lock")
}

/// An exclusive `flock` on [`cluster_lock_path`], held until dropped. The descriptor is
/// close-on-exec, so daemons the test starts do not inherit it.
pub struct ClusterLock {
    _file: std::fs::File,
}

impl ClusterLock {
    /// Blocks until the lock is ours.
    pub fn take() -> Self {
        let f = std::fs::File::create(cluster_lock_path()).expect("cluster lock file");
        use std::os::fd::AsRawFd;
        // SAFETY: flock on a file descriptor we own.
        let r = unsafe { libc::flock(f.as_raw_fd(), libc::LOCK_EX) };
        assert_eq!(r, 0, "flock {}", cluster_lock_path().display());
        ClusterLock { _file: f }
    }
}

/// How to start the cluster.
#[derive(Debug, Clone, Default)]
pub struct ClusterOptions {
    /// cgroup plugins (proctrack/task/jobacct_gather cgroup): jobs get cgroups that the node
    /// exporter's `slurm_job` collector reads.
    pub cgroup: bool,
    /// slurmdbd + MariaDB accounting: sacct, sacctmgr, sshare.
    pub dbd: bool,
    /// A script slurmctld runs at each job's end (`EpilogSlurmctld`).
    pub epilog_ctld: Option<PathBuf>,
}

/// A running cluster; stopped on drop.
pub struct SlurmCluster {
    dir: tempfile::TempDir,
    opts: ClusterOptions,
    _lock: ClusterLock,
}

impl SlurmCluster {
    /// Takes the lock and starts the cluster; panics with the script's output on failure and
    /// with the install command when Slurm (or MariaDB/slurmdbd for `dbd`) is missing.
    pub fn start(opts: ClusterOptions) -> Self {
        for p in ["munged", "slurmctld", "slurmd"] {
            if !Path::new("/usr/sbin").join(p).exists() {
                require_program(p, "slurm");
            }
        }
        for p in ["sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun"] {
            require_program(p, "slurm");
        }
        if opts.dbd {
            for p in ["slurmdbd", "mariadbd"] {
                if !Path::new("/usr/sbin").join(p).exists() {
                    require_program(p, "slurmdbd");
                }
            }
            require_program("sacct", "slurm");
            require_program("sacctmgr", "slurm");
        }
        let lock = ClusterLock::take();
        let c = SlurmCluster {
            dir: tempfile::Builder::new()
                .prefix("hpcmon-slurm-")
                .tempdir()
                .expect("tempdir"),
            opts,
            _lock: lock,
        };
        let out = c.script("slurm-cluster.sh").arg("start").output().unwrap();
        assert!(
            out.status.success(),
            "slurm-cluster.sh start ({:?}) failed:\n{}{}",
            c.opts,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        c
    }

    /// The state directory.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// `SLURM_CONF` for clients.
    pub fn conf(&self) -> PathBuf {
        self.dir.path().join("etc/slurm.conf")
    }

    /// A command of `scripts/` with this cluster's environment.
    pub fn script(&self, name: &str) -> Command {
        let mut c = Command::new(repo_root().join("scripts").join(name));
        c.env("HPCMON_SLURM_DIR", self.dir.path())
            .env(
                "HPCMON_SLURM_CGROUP",
                if self.opts.cgroup { "1" } else { "0" },
            )
            .env("HPCMON_SLURM_DBD", if self.opts.dbd { "1" } else { "0" })
            .env("SLURM_CONF", self.conf());
        if let Some(e) = &self.opts.epilog_ctld {
            c.env("HPCMON_SLURM_EPILOG_CTLD", e);
        }
        c
    }

    /// A Slurm client command with `SLURM_CONF` set.
    pub fn command(&self, prog: &str) -> Command {
        let mut c = Command::new(prog);
        c.env("SLURM_CONF", self.conf());
        c
    }

    /// Runs a Slurm client and returns its stdout; panics with stderr on failure.
    pub fn run(&self, prog: &str, args: &[&str]) -> String {
        let out = self.command(prog).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{prog} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// `sbatch --parsable` with `args`; returns the job id.
    pub fn sbatch(&self, args: &[&str]) -> String {
        let jobs = self.dir.path().join("jobs");
        std::fs::create_dir_all(&jobs).unwrap();
        let out = self
            .command("sbatch")
            .current_dir(&jobs)
            .args(["--parsable", "-o", "/dev/null", "-e", "/dev/null"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "sbatch {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .split(';')
            .next()
            .unwrap()
            .to_string()
    }

    /// The job's state as `sacct` (with `dbd`) or `squeue` prints it.
    pub fn state(&self, jobid: &str) -> String {
        let out = if self.opts.dbd {
            self.command("sacct")
                .args(["-X", "-n", "-P", "-o", "State", "-j", jobid])
                .output()
        } else {
            self.command("squeue")
                .args(["-h", "-o", "%T", "-j", jobid])
                .output()
        }
        .unwrap();
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .next()
            .unwrap_or("")
            .split_whitespace()
            .next()
            .unwrap_or("")
            .to_string()
    }
}

impl Drop for SlurmCluster {
    fn drop(&mut self) {
        let _ = self.script("slurm-cluster.sh").arg("stop").output();
    }
}
