#!/usr/bin/env python3
"""Compares one running hpcmon-gpu-exporter with nvidia-smi at the same moment, family by
family, and times it. Called by real-gpu-check.sh; prints PASS/FAIL/SKIP lines.

    real_gpu_check.py PORT EXPORTER_PID PROM_OUT [--expect-jobs 4242,4243] [--load-pid PID]
                      [--load-job 4242]

The exporter is expected to run as root with --collector.gpm: as root NVML refuses nothing
(no gpu_field_unavailable), every GPU's XIDs are watched, each process's memory matches
nvidia-smi --query-compute-apps, the load job's memory is its process's, and under load GPM
sees SM activity where nvidia-smi sees utilisation.

Exit status 1 if any check failed.
"""
import argparse
import re
import statistics
import subprocess
import sys
import time
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("port")
ap.add_argument("pid", type=int)
ap.add_argument("prom_out")
ap.add_argument("--expect-jobs", default="")
ap.add_argument("--load-pid", type=int, default=0)
ap.add_argument("--load-job", default="", help="the Slurm job id of the load's cgroup")
ap.add_argument("--scrapes", type=int, default=20)
a = ap.parse_args()
url = f"http://127.0.0.1:{a.port}/metrics"
for _ in range(200):
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{a.port}/-/ready", timeout=1).read()
        break
    except Exception:
        time.sleep(0.05)
time.sleep(2)  # let the XID event thread register and the job map be read

FIELDS = ["uuid", "index", "name", "pci.bus_id", "driver_version", "serial", "memory.total",
          "memory.used", "temperature.gpu", "power.draw", "power.limit", "clocks.sm",
          "clocks.mem", "utilization.gpu", "ecc.errors.uncorrected.volatile.total",
          "mig.mode.current", "pcie.link.gen.current", "pcie.link.width.current", "pstate"]
t0 = time.perf_counter()
body = urllib.request.urlopen(url, timeout=30).read().decode()
csv = subprocess.run(["nvidia-smi", f"--query-gpu={','.join(FIELDS)}", "--format=csv,noheader,nounits"],
                     capture_output=True, text=True, timeout=60, check=True).stdout
apps = subprocess.run(["nvidia-smi", "--query-compute-apps=gpu_uuid,pid,used_memory",
                       "--format=csv,noheader,nounits"],
                      capture_output=True, text=True, timeout=60).stdout
skew = time.perf_counter() - t0
open(a.prom_out, "w").write(body)

samples = {}
for line in body.splitlines():
    if not line or line.startswith("#"):
        continue
    m = re.match(r'([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
    if not m:
        continue
    labels = dict(re.findall(r'([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
    samples.setdefault(m.group(1), []).append((labels, float(m.group(4))))


def val(name, uuid, **kw):
    for l, v in samples.get(name, []):
        if l.get("uuid") == uuid and all(l.get(k) == x for k, x in kw.items()):
            return v
    return None


results = [f"INFO  exporter scrape and nvidia-smi queries {skew*1e3:.0f} ms apart"]


def check(ok, what):
    results.append(("PASS" if ok else "FAIL") + "  " + what)


def num(s):
    try:
        return float(s)
    except ValueError:
        return None


check(any(v == 1 for _, v in samples.get("gpu_nvml_up", [])), "gpu_nvml_up 1")
for c, v in [(l["collector"], v) for l, v in samples.get("gpu_scrape_collector_success", [])]:
    check(v == 1, f"collector {c} succeeded")
mib = 1024 * 1024
for row in csv.strip().splitlines():
    g = dict(zip(FIELDS, [c.strip() for c in row.split(",")]))
    u = g["uuid"]
    info = [l for l, _ in samples.get("gpu_info", []) if l.get("uuid") == u]
    check(len(info) == 1, f"{u}: gpu_info present")
    if info:
        i = info[0]
        check(i.get("index") == g["index"], f"{u}: index {i.get('index')} == {g['index']}")
        check(i.get("name") == g["name"], f"{u}: name {i.get('name')!r} == {g['name']!r}")
        check(i.get("pci_bus_id", "").lower() == g["pci.bus_id"].lower(),
              f"{u}: pci_bus_id {i.get('pci_bus_id')} == {g['pci.bus_id']}")
        check(i.get("driver_version") == g["driver_version"],
              f"{u}: driver {i.get('driver_version')} == {g['driver_version']}")
        check(i.get("serial") == g["serial"] or g["serial"] in ("[N/A]", ""),
              f"{u}: serial {i.get('serial')} == {g['serial']}")
    check(val("gpu_up", u) == 1, f"{u}: gpu_up 1")

    def near(name, ours, theirs, tol_abs, tol_rel=0.0):
        if theirs is None:
            results.append(f"SKIP  {u}: {name}: nvidia-smi gives no value")
            return
        ok = ours is not None and abs(ours - theirs) <= max(tol_abs, tol_rel * abs(theirs))
        check(ok, f"{u}: {name}: exporter {ours} vs nvidia-smi {theirs} (tolerance {max(tol_abs, tol_rel * abs(theirs)):g})")

    t = val("gpu_memory_total_bytes", u)
    near("memory total (MiB)", t / mib if t is not None else None, num(g["memory.total"]), 1)
    m = val("gpu_memory_used_bytes", u)
    near("memory used (MiB)", m / mib if m is not None else None, num(g["memory.used"]), 256, 0.05)
    near("temperature (C)", val("gpu_temperature_celsius", u), num(g["temperature.gpu"]), 3)
    near("power draw (W)", val("gpu_power_usage_watts", u), num(g["power.draw"]), 40, 0.25)
    near("power limit (W)", val("gpu_power_limit_watts", u), num(g["power.limit"]), 1)
    sm = val("gpu_clock_hertz", u, clock="sm")
    near("SM clock (MHz)", sm / 1e6 if sm is not None else None, num(g["clocks.sm"]), 100, 0.2)
    mem = val("gpu_clock_hertz", u, clock="memory")
    near("memory clock (MHz)", mem / 1e6 if mem is not None else None, num(g["clocks.mem"]), 50, 0.1)
    ut = val("gpu_utilization_ratio", u)
    if ut is not None:
        near("utilization (%)", ut * 100, num(g["utilization.gpu"]), 25)
    else:
        results.append(f"INFO  {u}: no gpu_utilization_ratio (nvidia-smi {g['utilization.gpu']})")
    near("PCIe link generation", val("gpu_pcie_link_generation", u), num(g["pcie.link.gen.current"]), 0)
    near("PCIe link width", val("gpu_pcie_link_width", u), num(g["pcie.link.width.current"]), 0)
    ps = g["pstate"].lstrip("P")
    near("performance state", val("gpu_performance_state", u), num(ps), 0)
    e = num(g["ecc.errors.uncorrected.volatile.total"])
    if e is not None:
        near("uncorrected volatile ECC", val("gpu_ecc_errors_total", u, type="uncorrected", counter="volatile"), e, 0)
    en = val("gpu_energy_joules_total", u)
    check(en is not None and en > 0, f"{u}: energy counter {en} > 0")
    mig = val("gpu_mig_mode_enabled", u)
    if g["mig.mode.current"] in ("Enabled", "Disabled"):
        check(mig == (1 if g["mig.mode.current"] == "Enabled" else 0), f"{u}: MIG mode {mig} vs {g['mig.mode.current']}")
    # processes and their memory, against nvidia-smi's compute apps on this GPU
    rows = [r.split(",") for r in apps.strip().splitlines() if r.startswith(u)]
    near("compute processes", val("gpu_processes", u), float(len(rows)), 0)
    used = sum(num(r[2].strip()) or 0 for r in rows)
    pm = val("gpu_processes_memory_used_bytes", u)
    near("processes' memory (MiB)", pm / mib if pm is not None else None, used, 64, 0.05)
    for r in rows:
        pid = r[1].strip()
        pb = val("gpu_process_memory_bytes", u, pid=pid)
        near(f"process {pid} memory (MiB)", pb / mib if pb is not None else None, num(r[2].strip()), 64, 0.05)
    if a.load_pid:
        load = [r for r in rows if r[1].strip() == str(a.load_pid)]
        check(bool(load), f"{u}: nvidia-smi lists the load process {a.load_pid}")
        if load and a.load_job:
            jm = val("gpu_slurm_job_memory_used_bytes", u, jobid=a.load_job)
            near(f"job {a.load_job} memory (MiB)", jm / mib if jm is not None else None,
                 num(load[0][2].strip()), 64, 0.05)
    # GPM (--collector.gpm): SM activity under load where nvidia-smi sees utilisation
    sm = val("gpu_gpm_sm_activity_ratio", u)
    busy = num(g["utilization.gpu"])
    if sm is None:
        hopper = re.search(r"\b(G?H\d{3}|G?B\d{3})\b", g["name"]) is not None
        (check(False, f"{u}: no gpu_gpm_sm_activity_ratio on a GPU with GPM ({g['name']})") if hopper
         else results.append(f"SKIP  {u}: no GPM values ({g['name']} may have no GPM)"))
    elif a.load_pid and busy:
        check(sm > 0, f"{u}: GPM SM activity {sm:.3f} > 0 under load (nvidia-smi utilisation {busy:g}%)")
        results.append(f"INFO  {u}: GPM tensor {val('gpu_gpm_tensor_activity_ratio', u)}, "
                       f"DRAM {val('gpu_gpm_dram_activity_ratio', u)}, occupancy {val('gpu_gpm_sm_occupancy_ratio', u)}")
    else:
        results.append(f"INFO  {u}: GPM SM activity {sm} (no load)")
    check(val("gpu_xid_event_watched", u) == 1, f"{u}: XID events watched")
    age = val("gpu_cached_values_age_seconds", u)
    check(age is not None and age < 15, f"{u}: background values {age} s old (< 3 x 5 s)")
refused = [l for l, _ in samples.get("gpu_field_unavailable", [])]
check(not refused, "NVML refused no field as root: " + (", ".join(
    f"{l.get('collector')}/{l.get('field')}={l.get('reason')}" for l in refused) or "none"))
jobs = {l.get("jobid") for l, _ in samples.get("gpu_slurm_job_info", [])}
for j in filter(None, a.expect_jobs.split(",")):
    check(j in jobs, f"gpu_slurm_job_info has job {j} (have {sorted(jobs)})")
check(any(v == 1 for _, v in samples.get("gpu_xid_event_watch_up", [])), "XID event watch running")

times = []
for _ in range(a.scrapes):
    t0 = time.perf_counter()
    urllib.request.urlopen(url, timeout=30).read()
    times.append(time.perf_counter() - t0)
rss = [int(l.split()[1]) for l in open(f"/proc/{a.pid}/status") if l.startswith("VmRSS:")][0] / 1024
results += [f"INFO  scrape median {statistics.median(times)*1e3:.2f} ms over {a.scrapes}, max {max(times)*1e3:.2f} ms",
            f"INFO  RSS {rss:.1f} MiB",
            "INFO  families: " + " ".join(sorted(k for k in samples if k.startswith("gpu_")))]
print("\n".join(results))
sys.exit(1 if any(r.startswith("FAIL") for r in results) else 0)
