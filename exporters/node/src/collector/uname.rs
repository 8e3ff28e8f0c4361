//! `uname` collector: `node_uname_info{sysname,release,version,machine,nodename,domainname}`
//! from uname(2), like node_exporter 1.5.

use std::ffi::CStr;
use std::sync::Arc;

use hpcmon_kit::{Collector, Context, MetricSet};

use super::Config;

/// The fields of `struct utsname`.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Uname {
    pub sysname: String,
    pub nodename: String,
    pub release: String,
    pub version: String,
    pub machine: String,
    pub domainname: String,
}

/// Calls uname(2).
pub(crate) fn uname() -> anyhow::Result<Uname> {
    // SAFETY: utsname is plain old data; uname fills it with NUL-terminated strings.
    let mut u: libc::utsname = unsafe { std::mem::zeroed() };
    if unsafe { libc::uname(&mut u) } != 0 {
        return Err(std::io::Error::last_os_error().into());
    }
    let s = |f: &[libc::c_char]| {
        // SAFETY: a c_char slice reinterpreted as bytes of the same length.
        let bytes = unsafe { std::slice::from_raw_parts(f.as_ptr().cast::<u8>(), f.len()) };
        CStr::from_bytes_until_nul(bytes)
            .map(|c| c.to_string_lossy().into_owned())
            .unwrap_or_else(|_| String::from_utf8_lossy(bytes).into_owned())
    };
    Ok(Uname {
        sysname: s(&u.sysname),
        nodename: s(&u.nodename),
        release: s(&u.release),
        version: s(&u.version),
        machine: s(&u.machine),
        domainname: s(&u.domainname),
    })
}

/// Writes `node_uname_info` for `u`.
pub(crate) fn emit(u: &Uname, out: &mut MetricSet) {
    out.gauge(
        "node_uname_info",
        "Labeled system information as provided by the uname system call.",
    )
    .sample(
        &[
            ("sysname", &u.sysname),
            ("release", &u.release),
            ("version", &u.version),
            ("machine", &u.machine),
            ("nodename", &u.nodename),
            ("domainname", &u.domainname),
        ],
        1.0,
    );
}

struct UnameCollector;

/// Builds the `uname` collector.
pub fn new(_cfg: &Config) -> anyhow::Result<Arc<dyn Collector>> {
    Ok(Arc::new(UnameCollector))
}

impl Collector for UnameCollector {
    fn collect(&self, _ctx: &Context, out: &mut MetricSet) -> anyhow::Result<()> {
        emit(&uname()?, out);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collector::testutil::assert_golden;
    use hpcmon_kit::metrics;

    #[test]
    fn golden_recorded() {
        // This machine's uname, recorded.
        let u = Uname {
            sysname: "Linux".into(),
            nodename: "vm".into(),
            release: "6.18.44-fc-v595".into(),
            version: "#1 SMP PREEMPT_DYNAMIC @0".into(),
            machine: "x86_64".into(),
            domainname: "(none)".into(),
        };
        let mut set = MetricSet::new();
        emit(&u, &mut set);
        set.normalize();
        assert_golden("uname", &metrics::encode_text(&set));
    }

    #[test]
    fn live_matches_proc() {
        // uname(2) agrees with the same facts in /proc/sys/kernel.
        let u = uname().unwrap();
        let k = |f: &str| {
            std::fs::read_to_string(format!("/proc/sys/kernel/{f}"))
                .unwrap()
                .trim_end_matches('\n')
                .to_owned()
        };
        assert_eq!(u.sysname, k("ostype"));
        assert_eq!(u.release, k("osrelease"));
        assert_eq!(u.version, k("version"));
        assert_eq!(u.nodename, k("hostname"));
        assert_eq!(u.domainname, k("domainname"));
        assert!(!u.machine.is_empty());
    }
}
